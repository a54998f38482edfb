package httpapi

import "net/http"

func (a *API) registerGroups(mux *http.ServeMux) {}
