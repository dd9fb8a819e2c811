# What every daemon gets from the skeleton (common/daemon.c), one test per daemon.
foreach(daemon agent collector alarm control scraper)
  dsf_script(${daemon}_daemon_basics daemon_basics.sh ${daemon})
endforeach()
