// A request made from the Product view (a form's save, a card's removal): busy while it runs,
// its refusal as a sentence for a person.
import { errorText } from "./context";

export class ProductAction {
  error = $state("");
  busy = $state(false);

  /** Runs fn; true when it succeeded (else `error` says why). */
  async run(fn: () => Promise<unknown>): Promise<boolean> {
    this.error = "";
    this.busy = true;
    try {
      await fn();
      return true;
    } catch (e) {
      this.error = errorText(e);
      return false;
    } finally {
      this.busy = false;
    }
  }
}
