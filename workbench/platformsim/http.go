package platformsim

import (
	"encoding/json"
	"io"
	"net/http"
)

// Handler serves the sandbox's HTTP API:
//
//	GET  /users                 list users
//	PUT  /users/{id}            create or replace a user (publishes platform.user.changed)
//	GET  /records               list contacts and leads
//	PUT  /records/{id}          create or replace a record (publishes platform.owner.changed when the owner changes)
//	GET  /assignments           owner.assign messages applied (or held) so far
func (p *Platform) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, p.Users()) })
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := p.User(r.PathValue("id"))
		if !ok {
			writeErr(w, 404, "user not found")
			return
		}
		writeJSON(w, 200, u)
	})
	mux.HandleFunc("PUT /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u User
		if !readJSON(w, r, &u) {
			return
		}
		u.ID = r.PathValue("id")
		if err := p.PutUser(r.Context(), u); err != nil {
			writeErr(w, 400, err.Error())
			return
		}
		writeJSON(w, 200, u)
	})
	mux.HandleFunc("GET /records", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, p.Records()) })
	mux.HandleFunc("GET /records/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok := p.Record(r.PathValue("id"))
		if !ok {
			writeErr(w, 404, "record not found")
			return
		}
		writeJSON(w, 200, rec)
	})
	mux.HandleFunc("PUT /records/{id}", func(w http.ResponseWriter, r *http.Request) {
		var rec Record
		if !readJSON(w, r, &rec) {
			return
		}
		rec.ID = r.PathValue("id")
		if err := p.PutRecord(r.Context(), rec); err != nil {
			writeErr(w, 400, err.Error())
			return
		}
		writeJSON(w, 200, rec)
	})
	mux.HandleFunc("GET /assignments", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, p.Assignments()) })
	return mux
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		writeErr(w, 400, "body must be JSON: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]map[string]string{"error": {"code": http.StatusText(code), "message": msg}})
}
