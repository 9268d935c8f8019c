// Package vault is the Bulwark vault: an offsite server that stores backup
// repositories for clients over HTTPS, and can be told to let a client add
// to a repository but never remove or overwrite anything in it.
//
// # Threat model
//
// The vault assumes the backed-up host may be compromised. An attacker on
// that host holds the repository password and the host's vault token. With
// an append-only token they can add junk, but cannot delete, overwrite or
// rename any object, so every snapshot the vault holds survives; they
// cannot plant garbage under the name of a content-addressed object (the
// vault checks the SHA-256); and they cannot shorten the retention of real
// snapshots by forging snapshot times, because retention uses the time the
// vault received each snapshot. Deletion happens only through the vault's
// own retention job, or through a full-access token kept off the backed-up
// host (an administrator running forget/prune).
//
// # Data directory
//
//	DATA/tls/cert.pem, key.pem       self-signed certificate (certs.EnsureSelfSigned)
//	DATA/tokens.json                 tokens, SHA-256 hashed (0600); written by `vault token`
//	DATA/usage/SHA256                bytes stored through each token (quota accounting)
//	DATA/usage/SHA256.bound          durable upper bound of those bytes (see usage.go)
//	DATA/vault.log                   refused requests, JSON lines (slog)
//	DATA/repos/NAME/                 repository NAME, in the local backend's layout
//	DATA/meta/NAME/received.jsonl    when the vault received each snapshot
//	DATA/meta/NAME/lockowners/LOCK   the token that created lock LOCK
//	DATA/status/                     status pages pushed by a control plane (status.go)
//
// Repositories use internal/repo/backend/local's layout and are read,
// listed and cleaned through it. Uploads are streamed to disk by the vault
// itself with the local backend's write protocol (objects.go): written to
// a temporary file while the body arrives, hashed on the way, fsynced and
// linked into place before the vault answers: a vault killed in the middle
// of an upload leaves no partial object, only a hidden temporary file
// that is removed when the vault next starts. The vault's own
// metadata lives beside the repositories, not inside them, so a repository
// directory stays a plain repository that `bulwark` can open directly.
//
// # HTTP API
//
// Every request carries "Authorization: Bearer TOKEN". Paths have one of
// three forms; segments are percent-encoded, and an encoded '/' or '\',
// a "." or ".." segment, an empty segment or a name that
// backend.Handle.Validate refuses is a 400 (see ParsePath):
//
//	POST   /NAME                       create repository NAME (201; 200 if it exists)
//	GET    /NAME/TYPE/                 list TYPE: JSON lines {"name":N,"size":S}
//	HEAD   /NAME/TYPE/OBJ              size in X-Object-Size (404 if missing)
//	GET    /NAME/TYPE/OBJ[?offset=O&length=L]  the object or a range (416 if the
//	                                   range does not fit; length 0 = to the end)
//	PUT    /NAME/TYPE/OBJ              create, never overwrite (201; 409 if it exists)
//	PUT    /NAME/TYPE/OBJ?replace=1    overwrite (full tokens only)
//	DELETE /NAME/TYPE/OBJ              remove (204)
//
// Status pages (status.go) live apart, under /_status/: anyone may GET
// them, only a status token (or an unlimited full one) may PUT them.
//
// TYPE is config, keys, data, index, snapshots, locks or parity; the
// config object is /NAME/config and its list /NAME/config/. Data and
// parity objects are addressed by id (the shard directory is a storage
// detail). A PUT must have a Content-Length (411 otherwise) of at most
// MaxObjectSize (24 MiB; 413 beyond). Errors have a text/plain body that
// says why.
//
// Status codes: 400 malformed path or query, 401 no token or an unknown
// (wrong or revoked) token, 403 the token's scope or mode forbids the
// request, 404 no such object or repository, 405 method, 409 object exists,
// 411 no length, 413 too large, 416 range, 422 content does not match its
// name, 507 quota exceeded or the vault's disk is full, 500 other failures.
//
// # Tokens
//
// A token is "bwv_" followed by 43 base64url characters (256 random bits).
// Only its SHA-256 is stored; a presented token is hashed and compared
// with every stored hash in constant time. Each token has a name (logged,
// never the token itself), a scope (one repository, or every repository)
// and a mode:
//
//   - full: everything above.
//   - append-only: may create repositories and objects, and read and list
//     everything (a backup with a parent reads config, keys, index,
//     snapshots, locks and the parent's trees in data packs; everything it
//     reads is encrypted with keys the client already holds, so reading
//     gives nothing away). It may never overwrite (PUT on an existing
//     object: 409), replace (403) or delete (403), except that it may delete
//     lock files it created itself, so that a backup releases its lock.
//     Every object it creates of a content-addressed type (data, index,
//     snapshots, keys, locks: the repository names each by the SHA-256 of
//     its bytes) must have that name, else 422: it cannot plant garbage
//     under a name a real object will need. Config and parity are not
//     content-addressed and are checked only by the client.
//
// Full tokens are not held to the hash rule: they may replace and delete
// anything anyway, so the check would protect nothing, and the backend
// conformance suite stores objects under arbitrary names.
//
// A revoked token is refused by a running vault at its next request: the
// vault re-reads tokens.json whenever the file changes (checked on every
// request with one stat).
//
// # Quotas
//
// A token may have a quota in bytes: the total size of the objects created
// through it (DATA/usage/, keyed by the token's hash). An upload that
// would take the total past the quota is refused with 507 before its body
// is read. The count is kept durable as an upper bound raised ahead of it
// (one fsync per 64 MiB or 1/16 of the quota, not per upload; usage.go),
// so a crash can never let a token store more than its quota; it can
// overcharge the token by at most that step. A clean shutdown records the
// exact count. Deleting objects does not give quota back (retention and prune
// are the administrator's); adding a token again under the same name
// starts its usage at zero.
//
// # Retention
//
// After storing a snapshot object the vault appends {"name","received"} to
// meta/NAME/received.jsonl and fsyncs it. A snapshot without a receipt (a
// crash between the two, or a repository copied in) counts as received at
// its file's modification time, which the vault's clock also set. Retention
// (Retention, `bulwark vault retention`, or `vault serve --retention`)
// keeps every snapshot received within KeepWithin of the newest receipt,
// and the KeepLast most recently received, and deletes the other snapshot
// objects. Measuring from the newest receipt rather than now means a
// client that stops backing up never loses its last snapshots; a client
// that floods new snapshots moves that point only up to now, which is no
// worse than measuring from now. Retention deletes snapshot objects only;
// the data they alone referenced stays until a prune with a full key and
// a full token reclaims it.
//
// # Uploads after a dropped connection
//
// An upload is one PUT of a whole object (at most 24 MiB). The client
// retries a PUT that failed in transit; if the failed attempt had in fact
// stored the object, the retry meets 409 and the retry layer accepts an
// object of the same name and size (names are SHA-256 of the content, so
// it is the same object). Partial uploads are not resumed: the vault
// discards an incomplete body, and the client sends the whole object again.
//
// # Logging
//
// Every refused request (status 400 to 599, except 404 and 416, which
// answer questions rather than refuse anything) is logged as a JSON line:
// time, remote address, token name ("" when no valid token), method, path,
// status and reason.
package vault
