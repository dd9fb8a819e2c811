# deploy/: cloud-init user data, the installer, the systemd unit and the Kubernetes manifests.
dsf_script(deploy_cloud_init_schema deploy_cloud_init_schema.sh)
dsf_script(deploy_install_prefix deploy_install_prefix.sh)
dsf_script(deploy_k8s_manifest deploy_k8s_manifest.sh)
dsf_script(deploy_k8s_manifests deploy_k8s_manifests.sh)
dsf_script(deploy_deps_services deploy_deps_services.sh)
# The packages ship the release build: the sanitizer build is never packaged.
if(NOT DAMSELFLY_SANITIZE)
  dsf_script(deploy_packages deploy_packages.sh)
endif()
