package httpapi

import "net/http"

func (a *API) registerProduce(mux *http.ServeMux) {}
