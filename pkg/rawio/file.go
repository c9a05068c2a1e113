package rawio

import "os"

// maxFileWrite is the largest write File makes raw: copying 64 KiB into
// the page cache takes some microseconds. A larger one goes through
// os.File, as a call that may take long.
const maxFileWrite = 64 << 10

// File is a regular file opened for writing, whose small writes are raw
// system calls. A Write allocates nothing.
type File struct {
	f  *os.File
	wr call // the Write under way
}

// NewFile returns f as a File.
func NewFile(f *os.File) (*File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	rf := &File{f: f}
	rf.wr.do, rf.wr.via = rf.wr.write, rc.Write
	return rf, nil
}

// Write writes all of b at the file's offset, as os.File's Write does.
func (f *File) Write(b []byte) (int, error) {
	if len(b) > maxFileWrite {
		return f.f.Write(b)
	}
	n, errno, err := f.wr.run(b)
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
