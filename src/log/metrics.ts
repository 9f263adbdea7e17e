/**
 * One CloudWatch embedded-metric-format (EMF) line: CloudWatch turns the named fields of a JSON log
 * line into metrics of `namespace`, by the listed dimension sets (`[[]]`: across everything).
 * `fields` holds the metric values (numbers, named in `metrics`), the dimensions' values and any
 * other property to keep with the line (a run id, a slot).
 */
export function emfLine(
  namespace: string,
  now: Date,
  metrics: { name: string; unit: 'Count' | 'Bytes' | 'Seconds' }[],
  fields: Record<string, string | number | null>,
  dimensions: string[][] = [[]],
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: dimensions,
          Metrics: metrics.map((m) => ({ Name: m.name, Unit: m.unit })),
        },
      ],
    },
    ...fields,
  });
}
