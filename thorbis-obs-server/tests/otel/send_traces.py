"""A client no one here wrote (the OpenTelemetry Python SDK, its batch span processor and
OTLP/HTTP exporter) sends 2,000 traces for the trace store's sampling test
(tests/trace_store.rs), then one trace in two batches 1.5 s apart.

    python send_traces.py http://127.0.0.1:PORT TOKEN

Traces (service "orders"), 1,000 per route for /api/orders/{id} and /api/invoices/{id}: a
SERVER root with `test.index` i (0..999) lasting 10 + i ms, and a CLIENT database child; for
i < 10 the child failed (status ERROR): 20 error traces, all fast. So per route the five
slowest clean traces last 1005..1009 ms.
Then "POST /api/payments": its root goes out first; its child (status ERROR) 1.5 s later.
Prints that trace's id (32 hex digits). Exits 0 when every export succeeded."""
import sys
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

base, token = sys.argv[1], sys.argv[2]
failures = []


class Checked(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        if result != SpanExportResult.SUCCESS:
            failures.append(len(spans))
        return result


exporter = Checked(endpoint=f"{base}/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=10)
provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=20_000, max_export_batch_size=512,
                                               schedule_delay_millis=200))
tracer = provider.get_tracer("thorbis-sampling-test")
MS = 1_000_000
now = time.time_ns() - 5_000 * MS

for route in ("/api/orders/{id}", "/api/invoices/{id}"):
    for i in range(1000):
        root = tracer.start_span(f"GET {route}", kind=SpanKind.SERVER, start_time=now,
                                 attributes={"http.route": route, "http.request.method": "GET",
                                             "http.response.status_code": 200, "test.index": i})
        db = tracer.start_span("SELECT orders", context=trace.set_span_in_context(root), kind=SpanKind.CLIENT,
                               start_time=now + MS, attributes={"db.system.name": "postgresql"})
        if i < 10:
            db.set_status(Status(StatusCode.ERROR, "deadlock detected"))
        db.end(end_time=now + 2 * MS)
        root.end(end_time=now + (10 + i) * MS)
provider.force_flush()

root = tracer.start_span("POST /api/payments", kind=SpanKind.SERVER, start_time=now,
                         attributes={"http.route": "/api/payments", "http.request.method": "POST"})
child = tracer.start_span("POST", context=trace.set_span_in_context(root), kind=SpanKind.CLIENT,
                          start_time=now + MS, attributes={"server.address": "api.stripe.com"})
root.end(end_time=now + 50 * MS)
provider.force_flush()
time.sleep(1.5)
child.set_status(Status(StatusCode.ERROR, "card network timeout"))
child.end(end_time=now + 40 * MS)
provider.force_flush()
provider.shutdown()
if failures:
    sys.exit(f"exports failed: {failures}")
print(format(root.get_span_context().trace_id, "032x"))
