"use client";
// A widget that can fail while rendering, inside the SDK's React error boundary: the rest of
// the page stays up, the error is reported once (with the component stack and the boundary's
// name), and "Try again" renders the widget anew.
import { useState } from "react";
import { ErrorBoundary } from "@thorbis/obs/react";
import { flush } from "@thorbis/obs";

function chargeInvoice(invoice) {
  if (invoice.card === "declined") {
    throw new Error(`card declined for invoice ${invoice.id}`);
  }
  return `Invoice ${invoice.id} paid`;
}

function InvoiceTotal({ invoice }) {
  return <p id="invoice-status">{chargeInvoice(invoice)}</p>;
}

export function InvoicePanel() {
  const [invoice, setInvoice] = useState({ id: "inv_7", card: "ok" });
  return (
    <section data-build={process.env.NEXT_PUBLIC_BUILD_NOTE || undefined}>
      <ErrorBoundary
        name="InvoicePanel"
        context={{ process: "invoicing", step: "charge" }}
        onError={() => flush()}
        onReset={() => setInvoice({ id: "inv_7", card: "ok" })}
        fallback={({ resetError }) => (
          <div id="invoice-fallback">
            <p>The invoice could not be charged.</p>
            <button id="invoice-retry" onClick={resetError}>
              Try again
            </button>
          </div>
        )}
      >
        <InvoiceTotal invoice={invoice} />
      </ErrorBoundary>
      <button id="charge-declined" onClick={() => setInvoice({ id: "inv_8", card: "declined" })}>
        Charge a declined card
      </button>
    </section>
  );
}
