// A landed transaction as the RPC reports it (GET /api/tx/{signature}): what a person checks
// in an explorer, for a localnet no public explorer can see.

import { getJson } from "./api.js";
import { $, copyButton, facts, h } from "./dom.js";
import { dateTime, pretty, shortKey, toUi } from "./format.js";

function value(v) {
  if (v && typeof v === "object") {
    if ("uiAmountString" in v) return v.uiAmountString;
    return JSON.stringify(v);
  }
  return String(v);
}

function instruction(ix, i, nested = false) {
  const rows = ix.info ? Object.entries(ix.info).map(([k, v]) => [k, value(v)])
    : [["accounts", (ix.accounts || []).map((a) => shortKey(a)).join(", ") || "—"], ["data", ix.data || "—"]];
  const dl = h("dl", { class: "facts small" });
  facts(dl, rows);
  return h("li", { class: nested ? "ix inner" : "ix" },
    h("div", { class: "ix-head" }, h("span", { class: "ix-num" }, nested ? `${i + 1}` : `#${i + 1}`),
      h("strong", { title: ix.programId }, ix.program), ix.type ? h("span", { class: "tag" }, ix.type) : ""),
    dl,
    ix.inner && ix.inner.length
      ? h("ol", { class: "ix-list inner-list", "aria-label": "inner instructions" },
          ix.inner.map((x, j) => instruction(x, j, true)))
      : "");
}

function render(tx) {
  const status = tx.err ? `failed: ${JSON.stringify(tx.err)}` : "success";
  const dl = h("dl", { class: "facts" });
  facts(dl, [
    ["Result", status],
    ["Slot", String(tx.slot)],
    ["Confirmations", `${tx.confirmations} slots since (${tx.confirmationStatus || "unknown"})`],
    ["Block time", tx.blockTime ? dateTime(new Date(tx.blockTime * 1000).toISOString()) : "—"],
    ["Fee", `${tx.feeSol} SOL (${tx.feeLamports} lamports)`],
    ["Compute units", tx.computeUnits ?? "—"],
    ["Signer", tx.signer],
    ["Cluster", tx.cluster],
  ]);
  const tokens = tx.tokenBalanceChanges.map((c) => h("tr", {},
    h("td", { title: c.account }, shortKey(c.account)),
    h("td", { title: c.owner }, shortKey(c.owner), c.owner === tx.signer ? h("span", { class: "tag" }, "you") : ""),
    h("td", {}, c.symbol || shortKey(c.mint)),
    h("td", { class: `num ${c.change.startsWith("-") ? "neg" : "pos"}` },
      `${c.changeUi.startsWith("-") ? "" : "+"}${pretty(c.changeUi, 9)}`)));
  const sol = tx.solBalanceChanges.map((c) => h("tr", {},
    h("td", { title: c.account }, shortKey(c.account), c.account === tx.signer ? h("span", { class: "tag" }, "you") : ""),
    h("td", { class: `num ${c.change.startsWith("-") ? "neg" : "pos"}` },
      `${c.change.startsWith("-") ? "" : "+"}${toUi(c.change, 9)} SOL`)));
  $("#tx-body").replaceChildren(
    h("section", { class: "card" }, h("h1", {}, "Transaction"),
      h("div", { class: "sig" }, h("code", { class: "signature" }, tx.signature),
        h("div", { class: "sig-actions" }, copyButton(tx.signature, "copy the signature"),
          tx.explorerUrl ? h("a", { href: tx.explorerUrl, target: "_blank", rel: "noopener" }, "Solana Explorer ↗") : "")),
      dl),
    h("section", { class: "card" }, h("h2", {}, "Token balance changes"),
      tokens.length ? h("table", { class: "table", id: "token-changes", "aria-label": "token balance changes" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Account"), h("th", { scope: "col" }, "Owner"),
          h("th", { scope: "col" }, "Token"), h("th", { scope: "col", class: "num" }, "Change"))),
        h("tbody", {}, tokens)) : h("p", { class: "empty" }, "No token balance changed.")),
    h("section", { class: "card" }, h("h2", {}, "SOL balance changes"),
      sol.length ? h("table", { class: "table", "aria-label": "SOL balance changes" }, h("tbody", {}, sol))
        : h("p", { class: "empty" }, "No SOL balance changed.")),
    h("section", { class: "card" }, h("h2", {}, `Instructions (${tx.instructions.length})`),
      h("ol", { class: "ix-list" }, tx.instructions.map((ix, i) => instruction(ix, i)))),
    h("section", { class: "card" }, h("h2", {}, "Program logs"),
      h("pre", { class: "logs" }, tx.logs.join("\n") || "(none)")));
}

export async function showTx(signature, backTo) {
  const back = $("#tx-back");
  back.href = backTo || "#/orders";
  back.textContent = backTo && backTo.startsWith("#/order/") ? "← Back to the order" : "← All orders";
  $("#tx-body").replaceChildren(h("p", { class: "muted" }, "Reading the transaction from the RPC…"));
  try {
    render(await getJson(`/api/tx/${encodeURIComponent(signature)}`));
  } catch (err) {
    $("#tx-body").replaceChildren(h("p", { class: "form-msg error" }, err.message));
  }
}
