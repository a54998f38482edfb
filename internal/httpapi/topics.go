package httpapi

import "net/http"

func (a *API) registerTopics(mux *http.ServeMux) {}
