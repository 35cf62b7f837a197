"""Installed distributions read from their dist-info directories, without importing anything:
names, versions, entry points, RECORD, the plugins a distribution declares (an
``openhands.plugins`` entry point or an ``agent-plugins`` marker), with every file read under a
size cap.

A public internal API (the store, the authoring tools and ``hostbridge`` build on it); not for
plugin hosts, whose API is :mod:`isolator`.
"""

from isolator.metadata._distinfo import (
    AGENT_PLUGINS_MARKER,
    AgentPluginsMarker,
    DeclaredPlugin,
    Distribution,
    EntryPoint,
    RecordEntry,
    dist_info_cap,
    find_agent_plugin_dir,
    find_distribution,
    find_module_dir,
    find_plugin_dir,
    find_site_packages,
    iter_distributions,
    parse_agent_plugins_marker,
    parse_entry_points,
    read_dist_info_file,
    read_distribution,
    read_record,
    read_wheel_dist_info_file,
    record_hashes,
)

__all__ = ["AGENT_PLUGINS_MARKER", "AgentPluginsMarker", "DeclaredPlugin", "Distribution",
           "EntryPoint", "RecordEntry", "dist_info_cap", "find_agent_plugin_dir",
           "find_distribution", "find_module_dir", "find_plugin_dir", "find_site_packages",
           "iter_distributions", "parse_agent_plugins_marker", "parse_entry_points",
           "read_dist_info_file", "read_distribution", "read_record",
           "read_wheel_dist_info_file", "record_hashes"]
