# Install rules and the Debian packages (CPack DEB, one package per build):
#   DAMSELFLY_STATIC=ON  -> damselfly-agent  (the static agent alone)
#   otherwise            -> damselfly-server (collector, balancer, alarm, control, scraper, fed)
# The dynamic agent of a normal build is never installed: the agent ships static only.
# scripts/build-packages builds both; docs/operations.md ("Installing the packages") says
# what they hold. Binaries go under the prefix (/usr in the packages); configs, units and
# state have the fixed places systemd and the daemons' defaults expect.
include(GNUInstallDirs)

set(DSF_DEB ${CMAKE_SOURCE_DIR}/deploy/debian)
set(DSF_PKG_OUT ${CMAKE_BINARY_DIR}/pkg)
# bookworm's lintian wants units in /lib/systemd/system, not /usr/lib/systemd/system.
set(DSF_UNIT_DIR /lib/systemd/system)
set(DSF_ETC /etc/damselfly)
set(DSF_PKG_MAINTAINER "Damselfly developers <dev@damselfly.invalid>" CACHE STRING
  "Maintainer field of the Debian packages")

if(DAMSELFLY_STATIC)
  set(DSF_PKG agent)
  set(DSF_PKG_BINS damselfly-agent)
  set(DSF_PKG_DAEMONS agent)
  set(DSF_PKG_STATE "")
  set(DSF_PKG_WRITTEN "")
else()
  set(DSF_PKG server)
  set(DSF_PKG_BINS damselfly-collector damselfly-balancer damselfly-alarm damselfly-control
    damselfly-scraper damselfly-fed)
  set(DSF_PKG_DAEMONS collector balancer alarm control scraper)
  set(DSF_PKG_STATE "collector balancer alarm control federation")
  set(DSF_PKG_WRITTEN "alarm.d policies")
endif()
# A partial tree (a component's sources absent) packages what it has.
set(bins ${DSF_PKG_BINS})
set(DSF_PKG_BINS)
foreach(bin ${bins})
  if(TARGET ${bin})
    list(APPEND DSF_PKG_BINS ${bin})
  endif()
endforeach()
set(DSF_PKG_NAME damselfly-${DSF_PKG})
set(DSF_PKG_DOC ${CMAKE_INSTALL_DATADIR}/doc/${DSF_PKG_NAME})

# ---- binaries, man pages, completions ----------------------------------------------------
install(TARGETS ${DSF_PKG_BINS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${DSF_PKG})
find_program(DSF_HELP2MAN help2man)
set(DSF_PKG_GENERATED)
foreach(bin ${DSF_PKG_BINS})
  # The CLI in section 1, the daemons in section 8.
  if(bin STREQUAL damselfly-fed)
    set(sec 1)
  else()
    set(sec 8)
  endif()
  set(comp ${DSF_PKG_OUT}/completions/${bin})
  add_custom_command(OUTPUT ${comp}
    COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/gen-completion $<TARGET_FILE:${bin}> ${comp}
    DEPENDS ${bin} ${CMAKE_SOURCE_DIR}/scripts/gen-completion
    COMMENT "bash completion of ${bin} from its --help" VERBATIM)
  list(APPEND DSF_PKG_GENERATED ${comp})
  install(FILES ${comp} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    COMPONENT ${DSF_PKG})
  if(DSF_HELP2MAN)
    set(man ${DSF_PKG_OUT}/man/${bin}.${sec}.gz)
    add_custom_command(OUTPUT ${man}
      COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/gen-man $<TARGET_FILE:${bin}> ${sec} ${man}
      DEPENDS ${bin} ${CMAKE_SOURCE_DIR}/scripts/gen-man
      COMMENT "man page of ${bin} from its --help" VERBATIM)
    list(APPEND DSF_PKG_GENERATED ${man})
    install(FILES ${man} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${sec} COMPONENT ${DSF_PKG})
  endif()
endforeach()
if(NOT DSF_HELP2MAN)
  message(STATUS "help2man not found: no man pages (scripts/install-deps.sh build installs it)")
endif()

# ---- /usr/share/doc: copyright and changelog.Debian.gz -----------------------------------
execute_process(COMMAND git -C ${CMAKE_SOURCE_DIR} log -1 --format=%cD
  OUTPUT_VARIABLE DSF_PKG_DATE OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT DSF_PKG_DATE)
  string(TIMESTAMP DSF_PKG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()
set(DSF_PKG_VERSION ${PROJECT_VERSION}-1)
configure_file(${DSF_DEB}/changelog.in ${DSF_PKG_OUT}/changelog.Debian @ONLY)
add_custom_command(OUTPUT ${DSF_PKG_OUT}/changelog.Debian.gz
  COMMAND gzip -9n -f -k ${DSF_PKG_OUT}/changelog.Debian
  DEPENDS ${DSF_PKG_OUT}/changelog.Debian VERBATIM)
list(APPEND DSF_PKG_GENERATED ${DSF_PKG_OUT}/changelog.Debian.gz)
add_custom_target(dsf_package_files ALL DEPENDS ${DSF_PKG_GENERATED})
install(FILES ${DSF_DEB}/copyright ${DSF_PKG_OUT}/changelog.Debian.gz DESTINATION ${DSF_PKG_DOC}
  COMPONENT ${DSF_PKG})

# ---- units, configs, starter rules and policies, state -----------------------------------
set(DSF_PKG_CONFFILES)
set(DSF_PKG_UNITS)
# Shipped world-readable (they hold no secret); the postinst makes them root:damselfly 0640
# before an admin adds passwords.
set(cfg_mode PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
foreach(d ${DSF_PKG_DAEMONS})
  list(APPEND DSF_PKG_UNITS damselfly-${d}.service)
endforeach()
if(DAMSELFLY_STATIC)
  # One unit source for every way the agent is installed: install-agent.sh and cloud-init
  # put the binary in /usr/local/bin, the package in /usr/bin.
  set(src ${CMAKE_SOURCE_DIR}/deploy/systemd/damselfly-agent.service)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(READ ${src} unit)
  string(REPLACE "ExecStart=/usr/local/bin/" "ExecStart=/usr/bin/" unit "${unit}")
  file(WRITE ${DSF_PKG_OUT}/damselfly-agent.service "${unit}")
  install(FILES ${DSF_PKG_OUT}/damselfly-agent.service DESTINATION ${DSF_UNIT_DIR}
    COMPONENT agent)
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/config/agent.json DESTINATION ${DSF_ETC} ${cfg_mode}
    COMPONENT agent)
  install(FILES ${DSF_DEB}/agent.lintian-overrides DESTINATION
    ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME damselfly-agent COMPONENT agent)
  set(DSF_PKG_CONFFILES ${DSF_ETC}/agent.json)
  set(DSF_PKG_OVERRIDES "${DSF_ETC}/agent.json 0640")
else()
  foreach(u ${DSF_PKG_UNITS})
    install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/${u} DESTINATION ${DSF_UNIT_DIR}
      COMPONENT server)
  endforeach()
  set(DSF_PKG_OVERRIDES "")
  foreach(c collector balancer alarm control scraper fed)
    install(FILES ${CMAKE_SOURCE_DIR}/deploy/config/${c}.json DESTINATION ${DSF_ETC} ${cfg_mode}
      COMPONENT server)
    list(APPEND DSF_PKG_CONFFILES ${DSF_ETC}/${c}.json)
    string(APPEND DSF_PKG_OVERRIDES "${DSF_ETC}/${c}.json 0640 ")
  endforeach()
  # The alarm engine's and the controller's APIs write rule and policy files here.
  foreach(dir alarm.d policies)
    file(GLOB files ${CMAKE_SOURCE_DIR}/deploy/${dir}/*.json)
    install(FILES ${files} DESTINATION ${DSF_ETC}/${dir} COMPONENT server)
    foreach(f ${files})
      get_filename_component(n ${f} NAME)
      list(APPEND DSF_PKG_CONFFILES ${DSF_ETC}/${dir}/${n})
    endforeach()
    string(APPEND DSF_PKG_OVERRIDES "${DSF_ETC}/${dir} 2770 ")
  endforeach()
  # The local driver finds it at ../share/damselfly beside its binary.
  install(PROGRAMS ${CMAKE_SOURCE_DIR}/deploy/install-agent.sh
    DESTINATION ${CMAKE_INSTALL_DATADIR}/damselfly COMPONENT server)
  string(STRIP "${DSF_PKG_OVERRIDES}" DSF_PKG_OVERRIDES)
endif()
install(DIRECTORY DESTINATION /var/lib/damselfly COMPONENT ${DSF_PKG})

# ---- maintainer scripts and CPack --------------------------------------------------------
string(REPLACE ";" " " DSF_PKG_UNITS "${DSF_PKG_UNITS}")
configure_file(${DSF_DEB}/postinst.in ${DSF_PKG_OUT}/control/postinst @ONLY)
configure_file(${DSF_DEB}/postrm.in ${DSF_PKG_OUT}/control/postrm @ONLY)
string(REPLACE ";" "\n" conffiles "${DSF_PKG_CONFFILES}")
file(WRITE ${DSF_PKG_OUT}/control/conffiles "${conffiles}\n")

string(TOUPPER ${DSF_PKG} C)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME damselfly)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${DSF_PKG_MAINTAINER})
set(CPACK_PACKAGE_VENDOR Damselfly)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${DSF_PKG_OUT}/deb)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${DSF_PKG})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_${C}_PACKAGE_NAME ${DSF_PKG_NAME})
set(CPACK_DEBIAN_${C}_PACKAGE_CONTROL_EXTRA
  "${DSF_PKG_OUT}/control/postinst;${DSF_PKG_OUT}/control/postrm;${DSF_PKG_OUT}/control/conffiles")
# adduser for the postinst; the static agent needs no shared library.
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_AGENT_DESCRIPTION "Damselfly monitoring agent (static binary)
Collects host, container, process and network-latency metrics and pushes
them over MQTT or Kafka to the Damselfly collectors; serves /metrics and a
snapshot API. One statically linked binary, with a hardened systemd unit
(not enabled).")
set(CPACK_DEBIAN_SERVER_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "mosquitto, influxdb, damselfly-agent")
set(CPACK_COMPONENT_SERVER_DESCRIPTION "Damselfly monitoring and auto-healing server
The collector (bus to time-series store), the balancer (bucket ownership
across collectors), the alarm engine, the healing controller, the scraper
(agentless and pull-mode monitoring) and the federation CLI damselfly-fed; each daemon with a hardened systemd unit (not
enabled), default configurations in /etc/damselfly, starter alarm rules and
healing policies.")
include(CPack)
