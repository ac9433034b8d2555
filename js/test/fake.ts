// A minimal stand-in for anywidget's model: get/set/on/off/send/save_changes.
export class FakeModel<S extends Record<string, unknown>> {
  sent: unknown[] = [];
  private handlers: Record<string, (() => void)[]> = {};
  constructor(public state: S) {}
  get<K extends keyof S>(key: K): S[K] { return this.state[key]; }
  set<K extends keyof S>(key: K, value: S[K]): void { this.state[key] = value; this.emit(`change:${String(key)}`); }
  on(event: string, cb: () => void): void { (this.handlers[event] ??= []).push(cb); }
  off(event: string, cb?: () => void): void { this.handlers[event] = (this.handlers[event] ?? []).filter((h) => h !== cb); }
  send(content: unknown): void { this.sent.push(content); }
  save_changes(): void {}
  emit(event: string): void { (this.handlers[event] ?? []).forEach((h) => h()); }
}
