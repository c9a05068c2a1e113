package rawio

import (
	"os"
	"syscall"
)

// MaxFileWrite is the largest write File makes raw: copying 64 KiB into
// the page cache takes some microseconds. A larger one goes through
// os.File, as a call that may take long.
const MaxFileWrite = 64 << 10

// File is a regular file opened for writing, whose small writes are raw
// system calls. A Write allocates nothing; Writes must not be concurrent.
type File struct {
	f  *os.File
	rc syscall.RawConn
	wr call // the Write under way
}

// NewFile returns f as a File.
func NewFile(f *os.File) (*File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	rf := &File{f: f, rc: rc}
	rf.wr.do = rf.wr.writeFile
	return rf, nil
}

// Write writes all of b at the file's offset, as os.File's Write does.
func (f *File) Write(b []byte) (int, error) {
	if len(b) > MaxFileWrite {
		return f.f.Write(b)
	}
	f.wr.p, f.wr.n, f.wr.errno = b, 0, 0
	err := f.rc.Write(f.wr.do)
	n, errno := f.wr.n, f.wr.errno
	f.wr.p = nil
	switch {
	case err != nil:
		err = os.ErrClosed // RawConn.Write fails only as the file closes, as os.File's Write does
	case errno != 0:
		err = errno
	}
	if err != nil {
		return n, &os.PathError{Op: "write", Path: f.f.Name(), Err: err}
	}
	return n, nil
}

// writeFile is what RawConn calls for a File's Write: a regular file
// never returns EAGAIN, so it writes until all of p is written or one
// fails.
func (w *call) writeFile(fd uintptr) bool {
	for w.n < len(w.p) && w.errno == 0 {
		k, e := write(fd, w.p[w.n:])
		switch {
		case e == syscall.EINTR:
		case e != 0:
			w.errno = e
		case k == 0:
			w.errno = syscall.EIO // no progress and no error: fail rather than loop
		default:
			w.n += k
		}
	}
	return true
}
