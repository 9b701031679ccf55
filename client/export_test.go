package client

// WithListPage sets how many items each request of a full listing asks
// for, so that tests page through short lists.
func WithListPage(n int) Option { return func(o *options) { o.pageSize = n } }
