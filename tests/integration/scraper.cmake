# damselfly-scraper against real servers: mosquitto, InfluxDB, the collector, the alarm engine
# and a real prometheus-node-exporter (scraper_lib.sh).
if(TARGET damselfly-scraper)
  dsf_script(scraper_targets_file scraper_targets_file.sh)
  dsf_script(scraper_bad_input scraper_bad_input.sh)
endif()
# On local MCIs of the federation: an exporter VM healed by the controller, and pull mode.
if(TARGET damselfly-scraper AND TARGET damselfly-control AND TARGET damselfly-fed)
  dsf_script(scraper_local_mci scraper_local_mci.sh)
  dsf_script(scraper_pull_mode scraper_pull_mode.sh)
endif()
# Exporters over https with basic auth (a real node_exporter) or a bearer token (an agent).
if(TARGET damselfly-scraper AND TARGET damselfly-agent)
  dsf_script(scraper_tls scraper_tls.sh)
endif()
