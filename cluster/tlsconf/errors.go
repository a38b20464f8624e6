package tlsconf

import (
	"errors"
	"fmt"
	"io/fs"
)

var (
	// ErrIncomplete: some but not all of the CA, certificate and key files
	// are set.
	ErrIncomplete = errors.New("TLS ca, cert and key must be set together")
	// ErrNotConfigured: LoadNode was given no files at all.
	ErrNotConfigured = errors.New("no TLS files configured")
	// ErrInvalidFile: a file exists but its content is not what it must be.
	ErrInvalidFile = errors.New("invalid")
	// ErrExists: GenerateDev would overwrite a file and Force is off.
	ErrExists = errors.New("file already exists")
	// ErrNotNode: a peer's verified certificate does not carry the node
	// role (ClientConfig refuses the handshake).
	ErrNotNode = errors.New("peer certificate is not a holdfast node certificate")
	// ErrInvalidOptions: DevOptions fail Validate.
	ErrInvalidOptions = errors.New("invalid development certificate options")
)

// FileError is a problem with one file. Its message names the file's
// purpose, its path and what is wrong, never the file's content.
type FileError struct {
	What string // "TLS CA", "TLS certificate", "TLS key", "gossip key", "secret"
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s %s: %v", e.What, e.Path, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }

// fileErr builds a FileError. A *fs.PathError is unwrapped so that the path
// is not repeated (errors.Is(err, fs.ErrNotExist) still holds).
func fileErr(what, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &FileError{What: what, Path: path, Err: err}
}

// invalid is an ErrInvalidFile with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidFile}, args...)...)
}
