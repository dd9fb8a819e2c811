# The bus trust model's HTTP and configuration parts: the API's write token and caps, and
# the configuration values refused at start and by --check.
dsf_script(security_api_auth security_api_auth.sh)
dsf_script(security_bad_config security_bad_config.sh)
# Every authenticated route of schemas/openapi.yaml, on every daemon, refuses a missing or
# wrong token.
dsf_script(security_api_tokens security_api_tokens.sh)
