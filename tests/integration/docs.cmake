# docs/: the pages generated from the code must match what the code says today.
dsf_script(docs_config_reference docs_config_reference.sh)
dsf_script(docs_openapi_routes docs_openapi_routes.sh)
