package httpapi

import "net/http"

func (a *API) registerConsume(mux *http.ServeMux) {}
