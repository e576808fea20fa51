"""The OpenTelemetry Python SDK's OTLP/HTTP log exporter sends Python `logging` records to the
agent (see tests/otlp_intake.rs): an INFO line, then, inside a span, an error logged with
`logger.exception` (its exception.type, exception.message and exception.stacktrace attributes
and the span's trace id), twice.

    python send_logs.py http://127.0.0.1:PORT TOKEN

Prints the trace id (32 hex digits) on the last line; exits 0 when the exporter reported
success."""
import logging
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

base, token = sys.argv[1], sys.argv[2]
resource = Resource.create({"service.name": "checkout", "deployment.environment": "test"})
memory = InMemoryLogRecordExporter()
provider = LoggerProvider(resource=resource)
provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
log = logging.getLogger("payments")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
tracer = TracerProvider(resource=resource).get_tracer("thorbis-test")

log.info("payment started")
with tracer.start_as_current_span("POST /api/invoices/{id}/pay") as span:
    for _ in range(2):
        try:
            raise ValueError("card declined")
        except ValueError:
            log.exception("payment failed")
    trace_id = format(span.get_span_context().trace_id, "032x")

records = memory.get_finished_logs()
exporter = OTLPLogExporter(endpoint=f"{base}/v1/logs", headers={"Authorization": f"Bearer {token}"}, timeout=10)
result = exporter.export(records)
print(f"exported {len(records)} records: {result}")
print(trace_id)
sys.exit(0 if getattr(result, "name", "") == "SUCCESS" else 1)
