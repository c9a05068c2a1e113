package logging

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// rotatingFile is Config.File, rotated by size the way logrotate
// numbers files: before a write would take the file past maxBytes, the
// oldest kept file is deleted, name.1 .. name.(keep-1) become name.2 ..
// name.keep, the file becomes name.1 and a new one is started. On disk:
// at most maxBytes × (keep + 1), at every moment, since the deletion comes
// before the new file.
//
// Only the sink's writer goroutine writes to it, whole buffers in order,
// so rotation neither reorders records nor splits one (but one longer
// than a file). Its time counts in Log.Blocked like any slow write.
//
// Why not lumberjack: it names a renamed file by the time to the
// millisecond, so two rotations within one millisecond (one buffer longer
// than two files does it) overwrite a file of records; it deletes old
// files on a goroutine of its own, so the bound holds only eventually; and
// that goroutine outlives Close.
type rotatingFile struct {
	name     string
	maxBytes int64
	keep     int
	f        *os.File // nil after a failed rotation; the next write opens again
	size     int64
	pipe     bool // not a regular file (a pipe, /dev/stdout): takes no room, never rotated
}

// openRotating opens name for appending, rotated at maxBytes, keeping keep
// renamed files.
func openRotating(name string, maxBytes int64, keep int) (*rotatingFile, error) {
	if maxBytes < 1 || keep < 1 {
		return nil, fmt.Errorf("log file of %d bytes keeping %d: both must be at least 1", maxBytes, keep)
	}
	r := &rotatingFile{name: name, maxBytes: maxBytes, keep: keep}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size, r.pipe = f, fi.Size(), !fi.Mode().IsRegular()
	return nil
}

// Write writes p, rotating first whenever the next piece would take the
// file past maxBytes. A p longer than a file goes in pieces, each cut
// after its last line end, or inside a line longer than a file.
func (r *rotatingFile) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		piece := p
		if int64(len(piece)) > r.maxBytes {
			piece = p[:r.maxBytes]
			if i := bytes.LastIndexByte(piece, '\n'); i >= 0 {
				piece = piece[:i+1]
			}
		}
		if r.f == nil || !r.pipe && r.size > 0 && r.size+int64(len(piece)) > r.maxBytes {
			if err := r.rotate(); err != nil {
				return n, err
			}
		}
		m, err := r.f.Write(piece)
		n += m
		r.size += int64(m)
		if err != nil {
			return n, err
		}
		p = p[len(piece):]
	}
	return n, nil
}

// rotate moves the files along and opens a new one. After a failed
// rotation the file is closed and the next write tries again.
func (r *rotatingFile) rotate() error {
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		if err != nil {
			return err
		}
		if err := os.Remove(r.backup(r.keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for i := r.keep - 1; i >= 1; i-- {
			if err := os.Rename(r.backup(i), r.backup(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if err := os.Rename(r.name, r.backup(1)); err != nil {
			return err
		}
	}
	return r.open()
}

func (r *rotatingFile) backup(i int) string { return r.name + "." + strconv.Itoa(i) }

// Close closes the file.
func (r *rotatingFile) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
