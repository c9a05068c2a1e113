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
// system calls. Its writes must not be concurrent.
type File struct {
	f  *os.File
	rc syscall.RawConn
}

// NewFile returns f as a File.
func NewFile(f *os.File) (File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return File{}, err
	}
	return File{f: f, rc: rc}, nil
}

// Write writes all of b at the file's offset, as os.File's Write does.
func (f File) Write(b []byte) (int, error) {
	if len(b) > MaxFileWrite {
		return f.f.Write(b)
	}
	n := 0
	var errno syscall.Errno
	err := f.rc.Write(func(fd uintptr) bool {
		for n < len(b) && errno == 0 {
			k, e := write(fd, b[n:])
			switch {
			case e == syscall.EINTR:
			case e != 0:
				errno = e
			case k == 0:
				errno = syscall.EIO // no progress and no error: fail rather than loop
			default:
				n += k
			}
		}
		return true
	})
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
