// Package verify makes the event log tamper-evident and checks it: it
// keeps the server's sealing key, writes the periodic checkpoints that
// commit to every sealed message, and walks a log to report the first
// message that engram did not write as it stands.
//
// What is checked, message by message in log order (Check):
//
//   - the seal (bus.Sealer): an HMAC-SHA256 under the server's key over the
//     subject, the payload and the headers that place the message — its
//     command, its expectation on its aggregate (or that it had none), its
//     place in an atomic batch. A message without a seal after the first
//     sealed one, with another key's seal, or whose bytes do not match its
//     seal, fails.
//   - sequences: JetStream numbers messages without gaps and the stream
//     denies deletes, so a missing sequence is a deleted message.
//   - expectations: a sealed message that expected its aggregate's last
//     sequence to be v must find, in the log, its aggregate's previous
//     message at exactly v. This is what JetStream checked when it stored
//     it; a deleted predecessor or an inserted message breaks it.
//   - atomic batches: the members of a batch are stored together, numbered
//     1..n, the last with the commit; a missing member breaks the run.
//   - checkpoints (events.LogCheckpointed): the server appends one every
//     so many sealed messages or so often, committing to every seal up to
//     a sequence by a running SHA-256 over (sequence, seal). The verifier
//     recomputes it, so a deleted, inserted or moved sealed message before
//     a checkpoint — the last message of an aggregate included, which no
//     later expectation names — is found. The last checkpoint is also
//     recorded beside the log (the head file), so a log truncated to before
//     it is found too.
//
// What it cannot show: changes made by a holder of the key (the server
// itself can rewrite history); anything about messages written before
// sealing began; truncation of sealed messages after the last checkpoint
// when the head file is lost or rolled back with the log; availability.
// Losing the key file means the log can no longer be verified.
package verify
