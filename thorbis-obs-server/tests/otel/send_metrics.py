"""The OpenTelemetry Python SDK's OTLP/HTTP metric exporter sends a known set of metrics to the
agent (see tests/otlp_intake.rs for the figures checked).

    python send_metrics.py http://127.0.0.1:PORT TOKEN

- counter "orders.created" (unit "{order}"), channel=web: 3 then 2, exported cumulative: 5;
- histogram "checkout.duration" (ms): 10, 20, 30, 40 in the SDK's default buckets
  (0, 5, 10, 25, 50, ...): count 4, sum 100;
- observable gauge "queue.depth" (unit "{message}"), queue=emails: 7.
Exits 0 when the exporter reported success."""
import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

base, token = sys.argv[1], sys.argv[2]
reader = InMemoryMetricReader()
provider = MeterProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}),
                         metric_readers=[reader])
meter = provider.get_meter("thorbis-test")
orders = meter.create_counter("orders.created", unit="{order}")
orders.add(3, {"channel": "web"})
orders.add(2, {"channel": "web"})
duration = meter.create_histogram("checkout.duration", unit="ms")
for v in (10, 20, 30, 40):
    duration.record(v)
meter.create_observable_gauge("queue.depth", callbacks=[lambda _opts: [Observation(7, {"queue": "emails"})]],
                              unit="{message}")

data = reader.get_metrics_data()
exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
result = exporter.export(data)
print(f"exported: {result}")
sys.exit(0 if result == MetricExportResult.SUCCESS else 1)
