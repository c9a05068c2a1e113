package journal

// Written returns the last change number written to the journal; every
// change up to it survives the process being killed. Tests wait for it:
// without Always it is Durable, with Always it comes before.
func (j *Journal) Written() uint64 { return j.writtenSeq.Load() }
