package node

// Decoded counts the log messages the node's follower has decoded,
// including any catch-up read of its search index.
func Decoded(n *Node) uint64 { return n.follower.Decoded() }
