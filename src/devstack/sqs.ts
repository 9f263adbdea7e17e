import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from './http.js';
import { authorize, type Iam } from './iam.js';
import { hashPayload, parseAuthorization, SigV4Error, verifySignature } from './sigv4.js';

/**
 * Local SQS (AWS JSON 1.0 protocol, as @aws-sdk/client-sqs speaks it): CreateQueue, GetQueueUrl,
 * SendMessage, SendMessageBatch, ReceiveMessage (visibility timeout, receive count), DeleteMessage,
 * ChangeMessageVisibility, GetQueueAttributes. Requests are SigV4-verified and authorised
 * (sqs:<Action> on the queue ARN). Enough for dropship's fan-out and for tests that play the Lambda
 * event source mapping (receive → invoke handler → delete what succeeded).
 */
interface Message {
  id: string;
  body: string;
  md5: string;
  visibleAt: number;
  receiveCount: number;
  receipt: string | undefined;
  sentAt: number;
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  messages: Message[];
  visibilityTimeout: number;
}

export class LocalSqs {
  private server: Server | undefined;
  endpoint = '';
  readonly queues = new Map<string, Queue>();
  /** Messages accepted by SendMessage / SendMessageBatch so far (every queue): the bench's messages_sent. */
  sent = 0;

  constructor(
    private readonly iam: Iam,
    private readonly accountId: string,
    private readonly region: string,
  ) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => reply(res, 500, { __type: 'InternalFailure', message: String(e) }));
    });
    this.endpoint = await listenLoopback(this.server);
    return this.endpoint;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  createQueue(name: string, visibilityTimeout = 30): Queue {
    const q: Queue = {
      name,
      url: `${this.endpoint}/${this.accountId}/${name}`,
      arn: `arn:aws:sqs:${this.region}:${this.accountId}:${name}`,
      messages: [],
      visibilityTimeout,
    };
    this.queues.set(q.url, q);
    return q;
  }

  /** Puts a message on a queue directly (how AWS services such as S3 notifications deliver). */
  deliver(url: string, body: string): void {
    const q = this.queues.get(url);
    if (!q) throw new Error(`no queue ${url}`);
    this.enqueue(q, body, 0);
  }

  /** Messages not yet deleted (visible or in flight). */
  pending(url: string): { body: string; receiveCount: number }[] {
    return (this.queues.get(url)?.messages ?? []).map((m) => ({ body: m.body, receiveCount: m.receiveCount }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    const action = target.replace(/^AmazonSQS\./, '');
    let principal: ReturnType<Iam['principals']['get']>;
    try {
      const auth = parseAuthorization(req.headers.authorization);
      principal = this.iam.principals.get(auth.accessKeyId);
      if (!principal)
        return reply(res, 400, {
          __type: 'com.amazonaws.sqs#InvalidClientTokenId',
          message: 'The security token included in the request is invalid.',
        });
      verifySignature(
        { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, payloadHash: hashPayload(body) },
        auth,
        principal.secretAccessKey,
      );
    } catch (e) {
      if (e instanceof SigV4Error)
        return reply(res, 403, { __type: `com.amazonaws.sqs#${e.code}`, message: e.message });
      throw e;
    }
    const input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    if (action === 'CreateQueue') {
      const q = this.createQueue(String(input.QueueName));
      return reply(res, 200, { QueueUrl: q.url });
    }
    const q =
      action === 'GetQueueUrl'
        ? [...this.queues.values()].find((x) => x.name === input.QueueName)
        : this.queues.get(String(input.QueueUrl));
    if (!q)
      return reply(res, 400, {
        __type: 'com.amazonaws.sqs#QueueDoesNotExist',
        message: 'The specified queue does not exist.',
      });
    // The batch APIs have no IAM actions of their own: AWS authorises them as their single-message actions.
    const iamAction = `sqs:${action.replace(/Batch$/, '')}`;
    if (!(await authorize(principal, iamAction, q.arn, { resourceAccountId: q.arn.split(':')[4]! }))) {
      return reply(res, 400, {
        __type: 'com.amazonaws.sqs#AccessDenied',
        message: `User: ${principal.arn} is not authorized to perform: ${iamAction} on resource: ${q.arn}`,
      });
    }
    const now = Date.now();
    switch (action) {
      case 'GetQueueUrl':
        return reply(res, 200, { QueueUrl: q.url });
      case 'SendMessage': {
        const m = this.enqueue(q, String(input.MessageBody), Number(input.DelaySeconds ?? 0));
        this.sent++;
        return reply(res, 200, { MessageId: m.id, MD5OfMessageBody: m.md5 });
      }
      case 'SendMessageBatch': {
        const entries = input.Entries as { Id: string; MessageBody: string; DelaySeconds?: number }[];
        if (entries.length > 10)
          return reply(res, 400, {
            __type: 'com.amazonaws.sqs#TooManyEntriesInBatchRequest',
            message: 'Maximum number of entries per request are 10.',
          });
        this.sent += entries.length;
        const ok = entries.map((e) => {
          const m = this.enqueue(q, e.MessageBody, e.DelaySeconds ?? 0);
          return { Id: e.Id, MessageId: m.id, MD5OfMessageBody: m.md5 };
        });
        return reply(res, 200, { Successful: ok, Failed: [] });
      }
      case 'ReceiveMessage': {
        const max = Number(input.MaxNumberOfMessages ?? 1);
        const vis = Number(input.VisibilityTimeout ?? q.visibilityTimeout);
        const out = q.messages.filter((m) => m.visibleAt <= now).slice(0, max);
        for (const m of out) {
          m.receiveCount++;
          m.visibleAt = now + vis * 1000;
          m.receipt = randomUUID();
        }
        return reply(res, 200, {
          Messages: out.map((m) => ({
            MessageId: m.id,
            ReceiptHandle: m.receipt,
            MD5OfBody: m.md5,
            Body: m.body,
            Attributes: { ApproximateReceiveCount: String(m.receiveCount), SentTimestamp: String(m.sentAt) },
          })),
        });
      }
      case 'DeleteMessage': {
        const i = q.messages.findIndex((m) => m.receipt === input.ReceiptHandle);
        if (i >= 0) q.messages.splice(i, 1);
        return reply(res, 200, {});
      }
      case 'ChangeMessageVisibility': {
        const m = q.messages.find((x) => x.receipt === input.ReceiptHandle);
        if (m) m.visibleAt = now + Number(input.VisibilityTimeout) * 1000;
        return reply(res, 200, {});
      }
      case 'GetQueueAttributes': {
        // As AWS counts them: visible now; in flight (received, not deleted); delayed (never received yet).
        const visible = q.messages.filter((m) => m.visibleAt <= now).length;
        const delayed = q.messages.filter((m) => m.visibleAt > now && m.receiveCount === 0).length;
        return reply(res, 200, {
          Attributes: {
            QueueArn: q.arn,
            ApproximateNumberOfMessages: String(visible),
            ApproximateNumberOfMessagesNotVisible: String(q.messages.length - visible - delayed),
            ApproximateNumberOfMessagesDelayed: String(delayed),
          },
        });
      }
      default:
        return reply(res, 400, {
          __type: 'com.amazonaws.sqs#UnsupportedOperation',
          message: `${action} is not supported by the local SQS`,
        });
    }
  }

  private enqueue(q: Queue, body: string, delaySeconds: number): Message {
    const m: Message = {
      id: randomUUID(),
      body,
      md5: createHash('md5').update(body).digest('hex'),
      visibleAt: Date.now() + delaySeconds * 1000,
      receiveCount: 0,
      receipt: undefined,
      sentAt: Date.now(),
    };
    q.messages.push(m);
    return m;
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
  res.end(JSON.stringify(body));
}
