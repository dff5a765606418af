// Svelte's client runtime ships no types for its internals; the state tests use only `proxy`,
// the function behind `$state`, to measure the model on real $state proxies under Node.
declare module "svelte/internal/client" {
  export function proxy<T>(value: T): T;
}
