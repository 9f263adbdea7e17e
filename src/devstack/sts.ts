import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from './http.js';
import { type Iam, type PolicyDocument, type Principal, trusts } from './iam.js';
import { xmlEscape } from './s3.js';
import { hashPayload, parseAuthorization, SigV4Error, verifySignature } from './sigv4.js';

/**
 * Local STS (query API, as @aws-sdk/client-sts speaks it): AssumeRole and GetCallerIdentity.
 * AssumeRole verifies the caller's SigV4 signature, has iam-simulate judge the role's trust policy
 * against the caller and the request's sts:ExternalId (./iam.ts), and issues temporary credentials limited to the role's
 * permission policies ∩ the session policy passed with the request. Errors are worded as AWS's.
 */
export class LocalSts {
  private server: Server | undefined;
  endpoint = '';
  /** Every AssumeRole call, for tests (never contains secrets). */
  readonly calls: { caller: string; roleArn: string; sessionName: string; hadExternalId: boolean; ok: boolean }[] = [];
  /** Tests: answer the next calls that match with an error (e.g. throttling) before handling them. */
  readonly faults: ((
    action: string,
    params: URLSearchParams,
  ) => { status: number; code: string; message: string } | undefined)[] = [];
  /** Tests: issue sessions this short (seconds) instead of DurationSeconds, to exercise refresh. */
  sessionSecondsOverride: number | undefined;

  constructor(private readonly iam: Iam) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        reply(res, 500, errorXml('Receiver', 'InternalFailure', String(e)));
      });
    });
    this.endpoint = await listenLoopback(this.server);
    return this.endpoint;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const params = new URLSearchParams(body.toString('utf8'));

    let caller: Principal;
    try {
      const auth = parseAuthorization(req.headers.authorization);
      const p = this.iam.principals.get(auth.accessKeyId);
      if (!p) {
        return reply(
          res,
          403,
          errorXml('Sender', 'InvalidClientTokenId', 'The security token included in the request is invalid.'),
        );
      }
      verifySignature(
        { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, payloadHash: hashPayload(body) },
        auth,
        p.secretAccessKey,
      );
      if (p.sessionToken !== undefined && req.headers['x-amz-security-token'] !== p.sessionToken) {
        return reply(
          res,
          403,
          errorXml('Sender', 'InvalidClientTokenId', 'The security token included in the request is invalid.'),
        );
      }
      if (p.expiresAt !== undefined && Date.now() >= p.expiresAt) {
        return reply(
          res,
          400,
          errorXml('Sender', 'ExpiredToken', 'The security token included in the request is expired'),
        );
      }
      caller = p;
    } catch (e) {
      if (e instanceof SigV4Error) return reply(res, 403, errorXml('Sender', e.code, e.message));
      throw e;
    }

    for (const fault of this.faults) {
      const f = fault(params.get('Action') ?? '', params);
      if (f) return reply(res, f.status, errorXml(f.status >= 500 ? 'Receiver' : 'Sender', f.code, f.message));
    }
    switch (params.get('Action')) {
      case 'GetCallerIdentity':
        return reply(
          res,
          200,
          `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${xmlEscape(caller.arn)}</Arn><UserId>${xmlEscape(caller.accessKeyId)}</UserId><Account>${caller.accountId}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
        );
      case 'AssumeRole':
        return await this.assumeRole(caller, params, res);
      default:
        return reply(res, 400, errorXml('Sender', 'InvalidAction', `Could not find operation ${params.get('Action')}`));
    }
  }

  private async assumeRole(caller: Principal, params: URLSearchParams, res: ServerResponse): Promise<undefined> {
    const roleArn = params.get('RoleArn') ?? '';
    const sessionName = params.get('RoleSessionName') ?? '';
    const externalId = params.get('ExternalId') ?? undefined;
    const duration = Number(params.get('DurationSeconds') ?? 3600);
    const call = { caller: caller.arn, roleArn, sessionName, hadExternalId: externalId !== undefined, ok: false };
    this.calls.push(call);

    if (!/^[\w+=,.@-]{2,64}$/.test(sessionName)) {
      return reply(
        res,
        400,
        errorXml(
          'Sender',
          'ValidationError',
          `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
        ),
      );
    }
    const role = this.iam.roles.get(roleArn);
    const denied = (): undefined =>
      reply(
        res,
        403,
        errorXml(
          'Sender',
          'AccessDenied',
          `User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
        ),
      );
    // AWS answers a missing role exactly like an untrusted caller: no information leaks.
    if (!role) return denied();
    // AWS's verdict (iam-simulate): the trust policy (principal, sts:ExternalId) and, across accounts,
    // the caller's own permission to call sts:AssumeRole on the role.
    if (!(await trusts(role, caller, { 'sts:ExternalId': externalId }))) return denied();
    if (duration < 900 || duration > role.maxSessionSeconds) {
      return reply(
        res,
        400,
        errorXml(
          'Sender',
          'ValidationError',
          `The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`,
        ),
      );
    }
    let sessionPolicy: PolicyDocument | undefined;
    const policy = params.get('Policy');
    // AWS: a session policy's plain text "can't exceed 2,048 characters".
    if (policy && policy.length > 2048)
      return reply(
        res,
        400,
        errorXml(
          'Sender',
          'ValidationError',
          "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 2048",
        ),
      );
    if (policy) {
      try {
        sessionPolicy = JSON.parse(policy) as PolicyDocument;
      } catch {
        return reply(
          res,
          400,
          errorXml('Sender', 'MalformedPolicyDocument', 'The policy is not in the valid JSON format.'),
        );
      }
    }
    const session = this.iam.issueSession(role, sessionName, this.sessionSecondsOverride ?? duration, sessionPolicy);
    call.ok = true;
    return reply(
      res,
      200,
      `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><AssumedRoleUser><Arn>${xmlEscape(session.arn)}</Arn><AssumedRoleId>AROA${role.name.toUpperCase().replace(/[^A-Z0-9]/g, '')}:${xmlEscape(sessionName)}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>${session.accessKeyId}</AccessKeyId><SecretAccessKey>${xmlEscape(session.secretAccessKey)}</SecretAccessKey><SessionToken>${xmlEscape(session.sessionToken!)}</SessionToken><Expiration>${new Date(session.expiresAt!).toISOString()}</Expiration></Credentials><PackedPolicySize>${policy ? 10 : 0}</PackedPolicySize></AssumeRoleResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
    );
  }
}

function reply(res: ServerResponse, status: number, body: string): undefined {
  res.writeHead(status, { 'content-type': 'text/xml' });
  res.end(body);
  return undefined;
}

function errorXml(type: string, code: string, message: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${type}</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
}
