// Server-side telemetry: Next.js makes OpenTelemetry spans for every request, route handler,
// server action and render; @vercel/otel exports them over OTLP/HTTP (protobuf) to
// OTEL_EXPORTER_OTLP_ENDPOINT, the thorbis-obs agent (http://127.0.0.1:9464, or :4318 with
// `otlp.listen`). The agent's token goes in OTEL_EXPORTER_OTLP_HEADERS
// ("Authorization=Bearer%20<token>").
import { registerOTel } from "@vercel/otel";

export function register() {
  registerOTel({ serviceName: "thorbis-nextjs-example" });
}
