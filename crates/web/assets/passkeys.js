/* Portico's passkeys: the only script of the pages, loaded only by the two passkey pages.

   Progressive enhancement. The passkey controls are in the page but hidden, under a sentence
   that says a browser with passkeys is needed. Where this script runs and the browser has
   passkeys (window.PublicKeyCredential), it hides the sentence and shows the controls;
   anywhere else nothing changes, and signing in with a password and security code works as
   ever. No inline script or handler is needed (the CSP allows neither).

   The pages carry what the script needs in data attributes: data-passkey="register" or
   "sign-in" on the controls, with data-start and data-finish (the two JSON steps), data-next
   (where to go after signing in) and the messages to show (data-failed, data-cancelled,
   data-exists), so that every word stays in the server's text. */
(function () {
  "use strict";

  if (!window.PublicKeyCredential || !navigator.credentials || !window.fetch) {
    return;
  }

  /* base64url (what the server speaks) to an ArrayBuffer (what the browser's API takes). */
  function fromBase64url(text) {
    var base64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4 !== 0) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  /* An ArrayBuffer to unpadded base64url. */
  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /* The options without null members: the browser's API wants them absent instead. */
  function withoutNulls(value) {
    if (Array.isArray(value)) {
      return value.map(withoutNulls);
    }
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (key) {
        if (value[key] !== null) {
          out[key] = withoutNulls(value[key]);
        }
      });
      return out;
    }
    return value;
  }

  /* Only a path on this server is followed (the server sends nothing else; this is a guard). */
  function isLocalPath(path) {
    return typeof path === "string" && /^\/(?![\/\\])/.test(path);
  }

  /* POSTs JSON to the server. The pages' Referrer-Policy is no-referrer, under which a
     browser sends "Origin: null" on a POST; the server checks Origin, so these requests ask
     for same-origin instead (which still sends no referrer to any other site). */
  function post(url, body) {
    return window.fetch(url, {
      method: "POST",
      credentials: "same-origin",
      referrerPolicy: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () {
        return {};
      }).then(function (data) {
        if (!response.ok) {
          var refused = new Error("refused");
          refused.toShow = data && typeof data.message === "string" ? data.message : "";
          throw refused;
        }
        return data;
      });
    });
  }

  function creationOptions(publicKey) {
    var options = withoutNulls(publicKey);
    options.challenge = fromBase64url(options.challenge);
    options.user.id = fromBase64url(options.user.id);
    (options.excludeCredentials || []).forEach(function (c) {
      c.id = fromBase64url(c.id);
    });
    return options;
  }

  function requestOptions(publicKey) {
    var options = withoutNulls(publicKey);
    options.challenge = fromBase64url(options.challenge);
    (options.allowCredentials || []).forEach(function (c) {
      c.id = fromBase64url(c.id);
    });
    return options;
  }

  /* The new credential as the server reads it. Of the extension results only credProps is
     sent: the server knows no others. */
  function registrationJson(credential) {
    var response = credential.response;
    var results = credential.getClientExtensionResults();
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64url(response.attestationObject),
        clientDataJSON: toBase64url(response.clientDataJSON),
        transports: typeof response.getTransports === "function" ? response.getTransports() : undefined
      },
      extensions: results && results.credProps ? { credProps: results.credProps } : {}
    };
  }

  function assertionJson(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: toBase64url(response.authenticatorData),
        clientDataJSON: toBase64url(response.clientDataJSON),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null
      },
      extensions: {}
    };
  }

  function needCredential(credential) {
    if (!credential) {
      throw new Error("no credential");
    }
    return credential;
  }

  function register(section) {
    var name = section.querySelector("input[name=name]");
    return post(section.getAttribute("data-start"), {}).then(function (started) {
      return navigator.credentials.create({ publicKey: creationOptions(started.publicKey) })
        .then(needCredential)
        .then(function (credential) {
          return post(section.getAttribute("data-finish"), {
            ceremony: started.ceremony,
            name: name ? name.value : "",
            credential: registrationJson(credential)
          });
        });
    });
  }

  function signIn(section) {
    return post(section.getAttribute("data-start"), {}).then(function (started) {
      return navigator.credentials.get({ publicKey: requestOptions(started.publicKey) })
        .then(needCredential)
        .then(function (credential) {
          return post(section.getAttribute("data-finish"), {
            ceremony: started.ceremony,
            next: section.getAttribute("data-next") || "",
            credential: assertionJson(credential)
          });
        });
    });
  }

  /* What to tell the person: the server's words when it refused, else by the browser's error
     (cancelled or timed out; a passkey already on this account), else the page's general one. */
  function messageFor(section, error) {
    if (error && error.toShow) {
      return error.toShow;
    }
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") {
      return section.getAttribute("data-cancelled");
    }
    if (name === "InvalidStateError" && section.hasAttribute("data-exists")) {
      return section.getAttribute("data-exists");
    }
    return section.getAttribute("data-failed");
  }

  function setUp(section) {
    var button = section.querySelector("[data-passkey-go]");
    var errorBox = section.querySelector("[data-passkey-error]");
    var errorText = errorBox && errorBox.querySelector("p");
    if (!button || !errorText) {
      return;
    }
    var ceremony = section.getAttribute("data-passkey") === "register" ? register : signIn;
    Array.prototype.forEach.call(document.querySelectorAll("[data-passkey-fallback]"), function (el) {
      el.hidden = true;
    });
    section.hidden = false;

    function go() {
      errorBox.hidden = true;
      button.disabled = true;
      ceremony(section).then(function (done) {
        if (!done || !isLocalPath(done.redirect)) {
          throw new Error("no way on");
        }
        window.location.assign(done.redirect);
      }).catch(function (error) {
        button.disabled = false;
        errorText.textContent = messageFor(section, error);
        errorBox.hidden = false;
        errorBox.focus();
      });
    }

    button.addEventListener("click", go);
    Array.prototype.forEach.call(section.querySelectorAll("input"), function (input) {
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          go();
        }
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-passkey]"), setUp);
}());
