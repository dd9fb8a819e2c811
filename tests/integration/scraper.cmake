# damselfly-scraper against real servers: mosquitto, InfluxDB, the collector, the alarm engine
# and a real prometheus-node-exporter (scraper_lib.sh).
if(TARGET damselfly-scraper)
  dsf_script(scraper_targets_file scraper_targets_file.sh)
endif()
