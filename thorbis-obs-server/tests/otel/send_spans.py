"""A client no one here wrote: the OpenTelemetry Python SDK with its OTLP/HTTP exporter
(opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http from PyPI, installed by
scripts/test.sh) sends a known set of spans to the agent. The Rust test
(tests/otlp_intake.rs) checks the agent's figures against the ones computed by hand here.

    python send_spans.py http://127.0.0.1:PORT TOKEN [gzip|none]

Spans (service "checkout", environment "test"; times set explicitly, so durations are exact):
- SERVER "GET /api/work-orders/{id}" with http.route: 10 spans of 100, 200, ..., 1000 ms; the
  ones of 900 and 1000 ms answer 500 (errors);
- SERVER "POST /api/invoices" without http.route (the route comes from the name): 4 spans of
  50 ms answering 201, one more of 50 ms with status ERROR and no status code;
- CLIENT db spans (db.system.name postgresql, SELECT on invoices): 10, 20, 30, 40 ms;
- CLIENT HTTP to api.stripe.com: 300 and 500 ms, the second answering 502;
- one INTERNAL span (no metric).
Exits 0 when the exporter reported success."""
import sys
import time

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

base, token = sys.argv[1], sys.argv[2]
compression = Compression.Gzip if len(sys.argv) > 3 and sys.argv[3] == "gzip" else Compression.NoCompression

exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers={"Authorization": f"Bearer {token}"},
                            compression=compression, timeout=10)
provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
tracer = provider.get_tracer("thorbis-test")

now = time.time_ns()
MS = 1_000_000
finished = []


def span(name, kind, ms, attributes=None, error=False):
    start = now - 2_000 * MS
    s = tracer.start_span(name, kind=kind, start_time=start, attributes=attributes or {})
    if error:
        s.set_status(Status(StatusCode.ERROR, "boom"))
    s.end(end_time=start + ms * MS)
    finished.append(s)


for i in range(1, 11):
    code = 500 if i >= 9 else 200
    span("GET /api/work-orders/{id}", SpanKind.SERVER, i * 100,
         {"http.route": "/api/work-orders/{id}", "http.request.method": "GET", "http.response.status_code": code})
for _ in range(4):
    span("POST /api/invoices", SpanKind.SERVER, 50, {"http.request.method": "POST", "http.response.status_code": 201})
span("POST /api/invoices", SpanKind.SERVER, 50, {"http.request.method": "POST"}, error=True)
for ms in (10, 20, 30, 40):
    span("SELECT invoices", SpanKind.CLIENT, ms,
         {"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.collection.name": "invoices"})
span("POST", SpanKind.CLIENT, 300, {"server.address": "api.stripe.com", "http.request.method": "POST",
                                    "http.response.status_code": 200})
span("POST", SpanKind.CLIENT, 500, {"server.address": "api.stripe.com", "http.request.method": "POST",
                                    "http.response.status_code": 502})
span("render invoice", SpanKind.INTERNAL, 5)

result = exporter.export(finished)
print(f"exported {len(finished)} spans: {result}")
sys.exit(0 if result == SpanExportResult.SUCCESS else 1)
