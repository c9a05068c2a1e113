package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the file whose exclusive flock marks a data directory as
// owned by one process. The lock goes with the process: a killed process
// leaves the file, not the lock.
const lockName = "LOCK"

// lockDir takes the exclusive lock of dir, without waiting. It fails at
// once, naming the directory, when another process (or another Open in
// this one) holds it. It reads and writes nothing else.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another process (%s is locked); "+
				"one directory belongs to one node", dir, name)
		}
		return nil, fmt.Errorf("data directory %s: locking %s: %w", dir, name, err)
	}
	return f, nil
}
