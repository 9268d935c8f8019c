// Bulwark console: the little script the pages need. Everything else is
// plain HTML forms; htmx refreshes the live tables.
"use strict";
(function () {
  function status(msg) {
    var el = document.getElementById("webauthn-status");
    if (el) el.textContent = msg;
  }
  async function postJSON(url, body) {
    var res = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body || {})
    });
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      var m = data && data.error && data.error.message ? data.error.message : ("the server answered " + res.status);
      throw new Error(m);
    }
    return data;
  }
  function supported() {
    return window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON;
  }
  // Sign-in with a security key: the API's challenge, the browser's
  // assertion, the API's session cookie.
  var login = document.getElementById("webauthn-login");
  if (login) {
    login.addEventListener("click", async function () {
      if (!supported()) { status("This browser cannot use security keys."); return; }
      login.disabled = true;
      status("Touch your security key...");
      try {
        var token = login.dataset.mfaToken;
        var opts = await postJSON("/api/v1/auth/webauthn/begin", {mfa_token: token});
        var cred = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(opts.publicKey)});
        await postJSON("/api/v1/auth/webauthn/finish", {mfa_token: token, response: cred.toJSON()});
        status("Signed in.");
        // Only a page of this site (the server checked it too).
        var next = new URL(login.dataset.next || "/", window.location.origin);
        window.location.assign(next.origin === window.location.origin ? next.pathname + next.search + next.hash : "/");
      } catch (e) {
        status("The security key was not accepted: " + e.message);
        login.disabled = false;
      }
    });
  }
  // Registering a security key for the signed-in user.
  var reg = document.getElementById("webauthn-register");
  if (reg) {
    reg.addEventListener("click", async function () {
      if (!supported()) { status("This browser cannot use security keys."); return; }
      reg.disabled = true;
      status("Touch your security key...");
      try {
        var begin = await postJSON("/api/v1/me/webauthn/begin");
        var cred = await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(begin.options.publicKey)});
        var name = (document.getElementById("key-name") || {}).value || "security key";
        await postJSON("/api/v1/me/webauthn/finish", {ceremony: begin.ceremony, name: name, response: cred.toJSON()});
        status("Security key added.");
        window.location.reload();
      } catch (e) {
        status("The security key was not added: " + e.message);
        reg.disabled = false;
      }
    });
  }
  // Forms that destroy something ask first.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) ev.preventDefault();
  }, true);
})();
