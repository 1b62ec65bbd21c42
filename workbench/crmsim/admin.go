package crmsim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// AdminLogRoutes registers the shared control endpoints on mux:
//
//	GET    /_crmsim/requests      the request log (bodies as JSON strings)
//	DELETE /_crmsim/requests      reset the log and counters
//	GET    /_crmsim/counters      Counters
//	GET    /_crmsim/faults        installed rules
//	POST   /_crmsim/faults        add a Rule; answers {"id": n}
//	DELETE /_crmsim/faults        remove every rule
//	DELETE /_crmsim/faults/{id}   remove one rule
func AdminLogRoutes(mux *http.ServeMux, log *Log, faults *Faults) {
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /_crmsim/requests", func(w http.ResponseWriter, r *http.Request) {
		type entry struct {
			Entry
			Body string `json:"body,omitempty"`
		}
		var out []entry
		for _, e := range log.Entries() {
			out = append(out, entry{Entry: e, Body: string(e.Body)})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("DELETE /_crmsim/requests", func(w http.ResponseWriter, r *http.Request) {
		log.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_crmsim/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, log.Counters())
	})
	mux.HandleFunc("GET /_crmsim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, faults.Rules())
	})
	mux.HandleFunc("POST /_crmsim/faults", func(w http.ResponseWriter, r *http.Request) {
		var rule Rule
		if err := json.NewDecoder(r.Body).Decode(&rule); err != nil || rule.Action == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be a rule with an action"})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]int{"id": faults.Add(rule)})
	})
	mux.HandleFunc("DELETE /_crmsim/faults", func(w http.ResponseWriter, r *http.Request) {
		faults.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_crmsim/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad id"})
			return
		}
		faults.Remove(id)
		w.WriteHeader(http.StatusNoContent)
	})
}
