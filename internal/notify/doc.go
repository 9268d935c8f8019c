// Package notify delivers Bulwark's notifications (alerts firing,
// resolving and acknowledged, heartbeats, test messages) to the channels
// configured under alerts.channels: email over SMTP, a signed JSON
// webhook, and Slack or Mattermost incoming webhooks.
//
// # Senders
//
// New builds a Sender from a config.Channel. A Sender makes one attempt and
// honours its context's deadline; it neither retries nor records anything.
//
//   - Email (go-mail): tls "starttls" (the default) requires STARTTLS and
//     refuses to continue in clear when the server does not offer it; "tls"
//     is implicit TLS (port 465); "none" is plain SMTP, and then refuses a
//     username, since the password would cross the network in clear.
//     Authentication is PLAIN, or LOGIN when the server offers only that,
//     and is only ever attempted over TLS. The subject is
//     "[Bulwark] SEVERITY title"; the body is plain text.
//   - Webhook: an HTTP POST of the JSON document Payload describes
//     (version 1), with Content-Type application/json, User-Agent bulwark,
//     X-Bulwark-Timestamp and X-Bulwark-Signature (below), and the
//     configured extra headers. A 2xx status is success; anything else,
//     redirects included (they are not followed), is an error carrying the
//     status and the first bytes of the answer.
//   - Slack: the incoming-webhook JSON ({"text": ..., "attachments": [...]})
//     that Slack and Mattermost both accept.
//
// # Signature
//
// A webhook with a secret signs each request. With T the Unix time in
// decimal seconds (the X-Bulwark-Timestamp header) and BODY the exact bytes
// of the request body, the signed string is
//
//	T + "." + BODY
//
// and X-Bulwark-Signature is "sha256=" followed by the lowercase hex of
// HMAC-SHA-256(secret, T + "." + BODY). Signing the timestamp with the body
// lets a receiver refuse replays: VerifySignature recomputes the MAC,
// compares in constant time, and rejects a timestamp further than the
// tolerance from its own clock, in either direction.
//
// # Delivery, retries and evidence
//
// A Notifier owns the channels by name. Deliver sends one message to one
// channel and records every attempt in the notify_attempts table (channel,
// kind, title, state, attempt number, start, duration, outcome, error), so
// the posture report can show the last notification actually delivered per
// channel (LastDelivered) rather than a promise. A failed attempt is retried
// after an exponential back-off (1s, 2s, 4s, ... capped at MaxBackoff) up
// to MaxAttempts times (default 5), each attempt bounded by AttemptTimeout;
// errors a retry cannot fix (ErrPermanent: a webhook's 3xx or 4xx other
// than 408, 425 and 429, an SMTP server without the required STARTTLS or
// with an untrusted certificate) stop at once. The outcome is published as
// an event: notification.delivered (info) or notification.failed (error,
// with the channel and the error). Attempts are recorded and events
// published even when the caller's context ends mid-way: an interrupted
// delivery is evidence too. Time and sleeping are injected so tests run
// the back-off without waiting. DeliverAll sends to several channels
// concurrently, so a slow or dead channel never delays the others. Test
// sends a message of state "test" through the same path, for
// `bulwark alert test CHANNEL`.
//
// # Secrets
//
// Credentials never leave the sender: not in errors, logs, events or the
// attempts table. A webhook URL is shown with its user information and
// query values replaced by REDACTED; a Slack URL, whose path is the
// credential, is shown as its scheme and host only. Errors from the HTTP
// client, which quote the full URL, are rewritten with the redacted form,
// and every error text is scrubbed of the channel's secret values (the
// password, the signing key, the URL's token parts, sensitive extra
// headers) before it is returned.
package notify
