// A customer's billing details and a card form. The SDK's session replay is private by default:
// what is typed and the page's text are masked in the recording, and the `data-private` notes
// are not recorded at all, so a replay shows the page's shape and never this data.
export function PaymentForm() {
  return (
    <section id="payment">
      <h2>Billing</h2>
      <p>Billing contact: Dana Whitfield, 12 Harbour Lane</p>
      <label>
        Name on card <input id="card-name" autoComplete="off" />
      </label>
      <label>
        Card number <input id="card-number" inputMode="numeric" autoComplete="off" />
      </label>
      <div data-private>
        <p>Customer notes: gate code 4711</p>
      </div>
    </section>
  );
}
