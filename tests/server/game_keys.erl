%%% ssh_server_key_api callback: host key from STATE/host, user keys from
%%% game_users (never from anybody's ~/.ssh).
-module(game_keys).
-behaviour(ssh_server_key_api).

-export([host_key/2, is_auth_key/3]).

host_key(Algorithm, DaemonOptions) ->
    Private = proplists:get_value(key_cb_private, DaemonOptions, []),
    HostDir = proplists:get_value(host_dir, Private),
    ssh_file:host_key(Algorithm, [{system_dir, HostDir}]).

%% NB: called both when a key is only offered (no signature yet) and right
%% before a signature is verified; see game_users.
is_auth_key(PublicUserKey, User, _DaemonOptions) ->
    game_users:check_key(PublicUserKey, User).
