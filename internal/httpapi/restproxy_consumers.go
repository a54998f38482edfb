package httpapi

import "net/http"

func (a *API) registerRESTProxyConsumers(mux *http.ServeMux) {}
