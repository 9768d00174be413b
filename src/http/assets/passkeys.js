// Passkeys on tessera's pages (served as /assets/passkeys.js; the pages carry no inline
// script). A form marked data-passkey="register" or "sign-in" gets its options (JSON) from
// its data-options URL, asks the browser for a credential, puts the browser's answer
// (JSON, WebAuthn Level 3 §5.1.8/§5.1.9 encoding) in its `credential` field and is posted
// like any other form. A sign-in form also starts the browser's autofill (conditional
// mediation) when the page has a field with autocomplete="username webauthn".
(() => {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const b64u = {
    encode(buffer) {
      const bytes = new Uint8Array(buffer);
      let text = '';
      for (const b of bytes) text += String.fromCharCode(b);
      return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    },
    decode(text) {
      const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
      const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
      return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
    },
  };

  // Options JSON -> the dictionaries navigator.credentials wants (ArrayBuffers for bytes).
  function creationOptions(o) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    }
    return {
      ...o,
      challenge: b64u.decode(o.challenge),
      user: { ...o.user, id: b64u.decode(o.user.id) },
      excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
    };
  }

  function requestOptions(o) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    }
    return {
      ...o,
      challenge: b64u.decode(o.challenge),
      allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
    };
  }

  // The browser's answer as JSON: toJSON() where the browser has it, else by hand.
  function answerJSON(cred) {
    if (typeof cred.toJSON === 'function') return JSON.stringify(cred.toJSON());
    const r = cred.response;
    const response = { clientDataJSON: b64u.encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = b64u.encode(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
      if (r.getAuthenticatorData) response.authenticatorData = b64u.encode(r.getAuthenticatorData());
      const key = r.getPublicKey ? r.getPublicKey() : null;
      if (key) response.publicKey = b64u.encode(key);
      if (r.getPublicKeyAlgorithm) response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
    } else {
      response.authenticatorData = b64u.encode(r.authenticatorData);
      response.signature = b64u.encode(r.signature);
      response.userHandle = r.userHandle ? b64u.encode(r.userHandle) : null;
    }
    return JSON.stringify({
      id: cred.id,
      rawId: b64u.encode(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults(),
      response,
    });
  }

  async function fetchOptions(form) {
    const body = new URLSearchParams({ csrf: form.elements.csrf ? form.elements.csrf.value : '' });
    const resp = await fetch(form.dataset.options, {
      method: 'POST', body, credentials: 'same-origin', headers: { accept: 'application/json' },
    });
    if (!resp.ok) throw new Error('options');
    return resp.json();
  }

  function showError(form, text) {
    const p = form.querySelector('[data-passkey-error]');
    if (p) { p.textContent = text; p.hidden = false; }
  }

  function submit(form, cred) {
    form.elements.credential.value = answerJSON(cred);
    form.submit();
  }

  let conditional = null;

  async function signIn(form, mediation) {
    const options = await fetchOptions(form);
    const request = { publicKey: requestOptions(options.publicKey || options) };
    if (mediation) {
      conditional = new AbortController();
      request.mediation = mediation;
      request.signal = conditional.signal;
    }
    const cred = await navigator.credentials.get(request);
    if (cred) submit(form, cred);
  }

  async function register(form) {
    const options = await fetchOptions(form);
    const cred = await navigator.credentials.create({ publicKey: creationOptions(options.publicKey || options) });
    if (cred) submit(form, cred);
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    const button = form.querySelector('button[data-passkey-start]');
    if (!button) continue;
    button.hidden = false;
    button.addEventListener('click', async () => {
      if (conditional) { conditional.abort(); conditional = null; }
      button.disabled = true;
      try {
        if (form.dataset.passkey === 'register') await register(form);
        else await signIn(form, null);
      } catch (e) {
        console.error('passkey:', e && e.name, e && e.message);
        showError(form, 'The passkey did not work. Try again, or use another way to sign in.');
      } finally {
        button.disabled = false;
      }
    });
  }

  // Autofill: the browser lists its passkeys for this site in the username field.
  const auto = document.querySelector('input[autocomplete~="webauthn"]');
  const form = document.querySelector('form[data-passkey="sign-in"]');
  if (auto && form && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((yes) => {
      if (yes) signIn(form, 'conditional').catch(() => {});
    });
  }
})();
