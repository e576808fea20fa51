import { Actions } from "./actions";
import { InvoicePanel } from "./invoice-panel";
import { PaymentForm } from "./payment-form";

export default function Home() {
  return (
    <main>
      <h1>Work orders</h1>
      <p>Thorbis Business OS, instrumented with @thorbis/obs.</p>
      <Actions />
      <PaymentForm />
      <InvoicePanel />
    </main>
  );
}
