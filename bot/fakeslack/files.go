package fakeslack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Upload is a file uploaded the way Slack's files upload v2 does it, in
// three calls: files.getUploadURLExternal announces the name and length and
// gets an upload URL, a POST to that URL carries the bytes, and
// files.completeUploadExternal shares the file into a channel.
type Upload struct {
	FileID   string
	Filename string
	Length   int // as announced to files.getUploadURLExternal
	// Size and SHA256 are those of the bytes POSTed to the upload URL;
	// Content holds them unless KeepUploadBytes(false).
	Size     int64
	SHA256   string
	Content  []byte
	Uploaded bool // the POST arrived
	// Set by files.completeUploadExternal.
	Completed bool
	Title     string
	Channel   string
	Comment   string // initial_comment
	ThreadTS  string
	Time      time.Time // when it was completed
}

// KeepUploadBytes sets whether the fake keeps the bytes of each upload in
// Upload.Content (it does unless told not to). A test of a large upload that
// measures memory turns it off and compares Size and SHA256.
func (s *Server) KeepUploadBytes(keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepBytes = keep
}

// Uploads returns the uploads completed into channel (every upload,
// completed or not, if ""), in the order they were announced.
func (s *Server) Uploads(channel string) []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Upload
	for _, id := range s.uploadOrder {
		u := s.uploads[id]
		if channel == "" || u.Completed && u.Channel == channel {
			out = append(out, *u)
		}
	}
	return out
}

// uploadURLLocked answers files.getUploadURLExternal: a file ID and a
// single-use upload URL on the fake.
func (s *Server) uploadURLLocked(args url.Values) apiResult {
	name := args.Get("filename")
	n, err := strconv.Atoi(args.Get("length"))
	switch {
	case name == "":
		return fail("invalid_arguments")
	case err != nil || n <= 0:
		return fail("invalid_arguments")
	}
	s.nextFile++
	id := fmt.Sprintf("F%08dFAKE", s.nextFile)
	s.uploads[id] = &Upload{FileID: id, Filename: name, Length: n}
	s.uploadOrder = append(s.uploadOrder, id)
	return ok(map[string]any{"upload_url": s.srv.URL + "/upload/" + id, "file_id": id})
}

// serveUpload takes the bytes of a file at its upload URL: a multipart form
// (its first file part, as slack-go sends it) or the raw body. It keeps
// them as they stream in, hashing them, so a large file costs the fake no
// more memory than the test asks for.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("file")
	if r.Method != http.MethodPost {
		http.Error(w, "POST the file", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	u, found := s.uploads[id]
	done := found && u.Uploaded
	keep := s.keepBytes
	s.mu.Unlock()
	if !found || done {
		http.Error(w, "no such upload", http.StatusNotFound)
		return
	}
	body := io.Reader(r.Body)
	if ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(ct, "multipart/") {
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				s.errorf("upload %s: a multipart body without a file part: %v", id, err)
				http.Error(w, "no file part", http.StatusBadRequest)
				return
			}
			if p.FileName() != "" {
				body = p
				break
			}
		}
	}
	var kept bytes.Buffer
	sum := sha256.New()
	out := io.Writer(sum)
	if keep {
		out = io.MultiWriter(sum, &kept)
	}
	n, err := io.Copy(out, body)
	if err != nil {
		s.errorf("upload %s: reading the file: %v", id, err)
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	u.Uploaded, u.Size, u.SHA256 = true, n, hexSum(sum)
	if keep {
		u.Content = kept.Bytes()
	}
	if n != int64(u.Length) {
		s.errs = append(s.errs, fmt.Sprintf("upload %s (%s): %d bytes sent, %d announced to files.getUploadURLExternal", id, u.Filename, n, u.Length))
	}
	s.changedLocked()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "OK - %d", n)
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// completeUploadLocked answers files.completeUploadExternal: the files,
// uploaded, are shared into channel_id (or the first of channels) with the
// initial comment.
func (s *Server) completeUploadLocked(args url.Values) apiResult {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(args.Get("files")), &files); err != nil || len(files) == 0 {
		return fail("invalid_arguments")
	}
	channel := args.Get("channel_id")
	if channel == "" {
		channel, _, _ = strings.Cut(args.Get("channels"), ",")
	}
	for _, f := range files {
		u, found := s.uploads[f.ID]
		if !found || !u.Uploaded {
			return fail("file_not_found")
		}
		if u.Completed {
			return fail("file_already_completed")
		}
	}
	now := s.nowLocked()
	out := make([]map[string]any, 0, len(files))
	for _, f := range files {
		u := s.uploads[f.ID]
		u.Completed, u.Title, u.Channel, u.Time = true, f.Title, channel, now
		u.Comment, u.ThreadTS = args.Get("initial_comment"), args.Get("thread_ts")
		if u.Title == "" {
			u.Title = u.Filename
		}
		out = append(out, map[string]any{"id": u.FileID, "title": u.Title})
	}
	return ok(map[string]any{"files": out})
}
