import { describe, expect, it } from "vitest";
import tokens, { colourings, describe as describeToken, sourceColour, TokenState, TokensState, tokenValue } from "../src/tokens";
import { heat } from "../src/dom";
import { FakeModel } from "./fake";

function tok(over: Partial<TokenState>): TokenState {
  return { position: 0, text: "a", logprob: -0.5, entropy: 1.0, is_reflection: false, schedule_value: null,
    intervention: null, top: null, ...over };
}

function mount(s: TokensState) {
  const model = new FakeModel(s as unknown as Record<string, unknown>);
  const host = document.createElement("div");
  tokens.render({ model: model as never, el: host });
  return { model, host };
}

describe("token view", () => {
  it("colours by entropy or by negative logprob", () => {
    expect(tokenValue(tok({}), "entropy")).toBe(1.0);
    expect(tokenValue(tok({}), "logprob")).toBe(0.5);
    expect(tokenValue(tok({ logprob: null }), "logprob")).toBeNull();
  });

  it("maps values onto a clamped white-to-hue scale", () => {
    expect(heat(0)).toBe("hsl(12, 85%, 97%)");
    expect(heat(5)).toBe(heat(1));
    expect(heat(Number.NaN)).toBe(heat(0));
  });

  it("renders one span per token, underlines reflection tokens and explains a token on hover", () => {
    const { host } = mount({ tokens: [tok({ text: "Wait", is_reflection: true, top: [["Wait", -0.1], ["But", -2]] }), tok({ position: 1, text: "," })],
      color_by: "entropy", scale_max: 2 });
    const spans = host.querySelectorAll(".rnb-tok");
    expect(spans.length).toBe(2);
    expect(spans[0].classList.contains("reflection")).toBe(true);
    spans[0].dispatchEvent(new Event("mouseenter"));
    expect(host.querySelector(".rnb-tip")?.textContent).toBe(describeToken(tok({ text: "Wait", is_reflection: true, top: [["Wait", -0.1], ["But", -2]] })));
  });

  it("switches the colouring through the synced state", () => {
    const { model, host } = mount({ tokens: [tok({})], color_by: "entropy", scale_max: 2 });
    (host.querySelector("button") as HTMLButtonElement).click();
    expect(model.get("color_by")).toBe("logprob");
    expect(host.querySelector("button")?.textContent).toContain("logprob");
  });

  it("colours each token by the model that wrote it, with a key, and offers that colouring only when tokens carry a source", () => {
    const palette = { small: "#dbeafe", large: "#fde68a" };
    const { model, host } = mount({ tokens: [tok({ text: "a", source: "small" }), tok({ position: 1, text: "b", source: "large" })],
      color_by: "source", scale_max: 1, palette });
    const spans = host.querySelectorAll<HTMLElement>(".rnb-tok");
    expect(spans[0].style.background).toBe(sourceColour(palette, "small"));
    expect(spans[1].style.background).toBe(sourceColour(palette, "large"));
    expect(spans[0].style.background).not.toBe(spans[1].style.background);
    expect([...host.querySelectorAll(".rnb-source-key")].map((n) => n.textContent?.trim())).toEqual(["small", "large"]);
    spans[1].dispatchEvent(new Event("mouseenter"));
    expect(host.querySelector(".rnb-tip")?.textContent).toContain("by large");
    (host.querySelector("button") as HTMLButtonElement).click();
    expect(model.get("color_by")).toBe("entropy");
    expect(colourings([tok({})])).toEqual(["entropy", "logprob"]);
  });

  it("never lets a palette value carry CSS other than a #rrggbb colour", () => {
    expect(sourceColour({ small: "red;position:fixed" }, "small")).toBe("#f1f5f9");
    expect(sourceColour({ small: "#ABCDEF" }, "small")).toBe("#ABCDEF");
    expect(sourceColour(undefined, null)).toBe("#f1f5f9");
  });

  it("shows hostile token text as text: no element, attribute or link is created from it", () => {
    const hostile = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)"];
    const { host } = mount({ tokens: hostile.map((text, position) => tok({ position, text, intervention: text,
      top: [[text, -1]] })), color_by: "entropy", scale_max: 1 });
    host.querySelectorAll(".rnb-tok").forEach((n) => n.dispatchEvent(new Event("mouseenter")));
    expect(host.querySelectorAll("img, script, a, [onerror], [href], [src]").length).toBe(0);
    const attrs = [...host.querySelectorAll("*")].flatMap((n) => [...n.attributes].map((a) => a.value));
    expect(attrs.filter((a) => a.includes("alert"))).toEqual([]);
    for (const text of hostile) expect(host.textContent).toContain(text);
  });
});
