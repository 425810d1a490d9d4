// The API-key field: shown when the ingress wants a key (a 401 from any call, or /api/info
// saying keys are required). The key is kept in this browser's localStorage; api.js sends it
// as a Bearer header and, on the live feed, as the WebSocket subprotocol. Saving or
// forgetting it reloads the page, so every view and the feed start again with it.

import { apiKey, KEY_PATTERN, onUnauthorized, setApiKey } from "./api.js";
import { $ } from "./dom.js";

const CREATE = "Create one with: orderflow keys create --name me --scope trade";

export function initKey({ reload = () => location.reload() } = {}) {
  const form = $("#key-form");
  const input = $("#api-key");
  const msg = $("#key-msg");
  const button = $("#key-btn");
  const stored = apiKey();
  button.textContent = stored ? "API key ✓" : "API key";
  $("#key-forget").hidden = !stored;

  function show(why) {
    button.hidden = false;
    form.hidden = false;
    $("#key-why").textContent = why;
  }

  button.addEventListener("click", () => {
    form.hidden = !form.hidden;
    if (!form.hidden) input.focus();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!KEY_PATTERN.test(key)) {
      msg.textContent = "An API key looks like ofk_<12 hex digits>_<43 characters>.";
      msg.hidden = false;
      input.focus();
      return;
    }
    setApiKey(key);
    input.value = "";
    reload();
  });
  $("#key-forget").addEventListener("click", () => {
    setApiKey(null);
    reload();
  });
  onUnauthorized((error) => {
    if (!form.hidden) return;
    show(apiKey()
      ? `The ingress refused the stored key (${error.code || "unauthorized"}): enter another.`
      : `This ingress requires an API key. ${CREATE}`);
  });
  return {
    // From /api/info: offer the field where keys are required, or a key is stored.
    required(isRequired) {
      if (isRequired || apiKey()) button.hidden = false;
    },
  };
}
