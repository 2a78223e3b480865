package control

import (
	_ "embed"
	"net/http"
)

// OpenAPIDocument is the OpenAPI 3 description of this API, served at
// GET /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPIDocument []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPIDocument)
}
