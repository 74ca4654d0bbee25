package history

import (
	"net/http"

	"github.com/ssegate/ssegate/auth"
)

// ServePoll answers GET <poll path>.
func (s *Server) ServePoll(w http.ResponseWriter, r *http.Request, req Request) {
	(&auth.Error{Status: http.StatusNotImplemented, Code: "not_implemented", Detail: "long-poll comes in the next commit"}).Write(w)
}
