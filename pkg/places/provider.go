package places

// closed is a channel that is always closed.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Ready returns a channel that is closed when p can answer without
// waiting for data to load: the offline provider's Ready, through any
// wrappers, and a closed channel for providers that never wait.
func Ready(p Provider) <-chan struct{} {
	if r, ok := p.(interface{ Ready() <-chan struct{} }); ok {
		return r.Ready()
	}
	return closed
}
