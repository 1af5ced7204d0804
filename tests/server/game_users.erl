%%% User registry of the reference server.
%%%
%%% Users are identified by their SSH user name (a UUID, not validated) and
%%% bound to the first public key that *successfully authenticated* for them.
%%%
%%% Erlang's ssh calls the key callback's is_auth_key/3 already when a key is
%%% merely offered (before any signature is checked), so is_auth_key/3 only
%%% stashes the offered key per {connection, user} in a public ETS table.
%%% The daemon's connectfun (run by the connection process after a
%%% successful authentication) calls authenticated/2, which registers the
%%% stashed key if the user is still unknown. All registrations go through
%%% this gen_server, so they happen exactly once, even for many parallel
%%% connections with the same new user.
%%%
%%% The stash holds the key checked last, and OTP checks the key again
%%% right before it verifies a signature, so after a successful
%%% authentication the stash is the key that signed, never one that was
%%% only offered: that key is registered, and conn_info/1 reports it (the
%%% `current` key of protocol 2's listKeys).
%%%
%%% Persistence (backend file, single servers): STATE/users, one line
%%% "<user> <key-type> <base64>" per user, appended and fsync'ed by this
%%% process only. Backend mnesia (the cluster): game_db's account table,
%%% any of a user's keys authenticates, registration is a transaction.
%%%
%%% The same process hands out connection ids ("<ospid>-<n>") and monitors
%%% the connection processes to forget them when they end.
-module(game_users).
-behaviour(gen_server).

-export([start/1, start/2,
         check_key/2,
         authenticated/2,
         conn_info/1,
         canonical_key/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(USERS, game_users_tab).      % {User :: binary(), KeyLine :: binary()}
-define(OFFERED, game_offered_tab).  % {{ConnPid, User}, Key}
-define(CONNS, game_conns_tab).      % {ConnPid, ConnId :: binary(), User, ok | denied, KeyLine}

%% backend: file (STATE/users, one key per user) or mnesia (game_db, the
%% cluster: several keys per user).
-record(st, {backend = file :: file | mnesia, users_fd, log_fd, next = 1 :: pos_integer(),
             watched = #{} :: map()}).

%%====================================================================
%% API
%%====================================================================

start(StateDir) ->
    start(StateDir, file).

start(StateDir, Backend) ->
    persistent_term:put({?MODULE, backend}, Backend),
    gen_server:start({local, ?MODULE}, ?MODULE, {StateDir, Backend}, []).

%% Called from the key callback (in the connection process) for every key
%% the client offers or signs with. Unknown user: accept any key and
%% remember it; known user: only the registered key.
check_key(Key, User0) ->
    User = user_bin(User0),
    case valid_user(User) of
        false ->
            false;
        true ->
            Line = canonical_key(Key),
            case registered_keys(User) of
                [] ->
                    stash(User, Key),
                    true;
                Keys ->
                    case lists:member(Line, Keys) of
                        true -> stash(User, Key), true;
                        false -> false
                    end
            end
    end.

registered_keys(User) ->
    case persistent_term:get({?MODULE, backend}) of
        mnesia -> game_db:lookup_keys(User);
        file -> [K || {_, K} <- ets:lookup(?USERS, User)]
    end.

%% Called from the daemon's connectfun (in the connection process) after
%% successful authentication. Registers the user if needed.
authenticated(User0, ConnPid) ->
    gen_server:call(?MODULE, {authenticated, user_bin(User0), ConnPid}, infinity).

%% {ok, ConnId, User, ok | denied, KeyLine} | undefined; KeyLine is the
%% key whose signature was verified.
conn_info(ConnPid) ->
    case ets:lookup(?CONNS, ConnPid) of
        [{_, Id, User, Status, Line}] -> {ok, Id, User, Status, Line};
        [] -> undefined
    end.

%% "ssh-ed25519 AAAA..." (no comment, no newline)
canonical_key(Key) ->
    Enc = ssh_file:encode([{Key, []}], auth_keys),
    [Type, B64 | _] = binary:split(string:trim(Enc), <<" ">>, [global, trim_all]),
    <<Type/binary, " ", B64/binary>>.

%%====================================================================
%% gen_server
%%====================================================================

init({StateDir, Backend}) ->
    ets:new(?USERS, [named_table, public, set, {read_concurrency, true}]),
    ets:new(?OFFERED, [named_table, public, set]),
    ets:new(?CONNS, [named_table, public, set, {read_concurrency, true}]),
    UsersFile = filename:join(StateDir, "users"),
    load_users(UsersFile),
    {ok, UFd} = file:open(UsersFile, [append, raw, binary]),
    {ok, LFd} = file:open(filename:join(StateDir, "requests.log"), [append, raw, binary]),
    {ok, #st{backend = Backend, users_fd = UFd, log_fd = LFd}}.

handle_call({authenticated, User, Pid}, _From, St0) ->
    Offered = case ets:lookup(?OFFERED, {Pid, User}) of
                  [{_, K}] -> K;
                  [] -> undefined
              end,
    ets:match_delete(?OFFERED, {{Pid, '_'}, '_'}),
    Status = register_if_new(User, Offered, St0),
    Id = iolist_to_binary([os:getpid(), $-, integer_to_list(St0#st.next)]),
    Line = case Offered of
               undefined -> undefined;
               _ -> canonical_key(Offered)
           end,
    ets:insert(?CONNS, {Pid, Id, User, Status, Line}),
    St = watch(Pid, St0#st{next = St0#st.next + 1}),
    {reply, {Status, Id}, St};
handle_call(_Req, _From, St) ->
    {reply, {error, unknown_call}, St}.

handle_cast({watch, Pid}, St) ->
    {noreply, watch(Pid, St)};
handle_cast(_Msg, St) ->
    {noreply, St}.

handle_info({'DOWN', _Ref, process, Pid, _Reason}, St) ->
    case ets:lookup(?CONNS, Pid) of
        [{_, Id, User, _, _}] ->
            game_server:info("connection ~s (~s) ended", [Id, User]);
        [] ->
            ok
    end,
    ets:delete(?CONNS, Pid),
    ets:match_delete(?OFFERED, {{Pid, '_'}, '_'}),
    {noreply, St#st{watched = maps:remove(Pid, St#st.watched)}};
handle_info(_Info, St) ->
    {noreply, St}.

terminate(_Reason, _St) ->
    ok.

%%====================================================================
%% Internal
%%====================================================================

register_if_new(_User, undefined, _St) ->
    denied;
register_if_new(User, Key, #st{backend = mnesia} = St) ->
    case game_db:register(User, canonical_key(Key)) of
        {ok, new} -> log_registered(User, Key, St), ok;
        {ok, existing} -> ok;
        denied -> denied
    end;
register_if_new(User, Key, St) ->
    Line = canonical_key(Key),
    case ets:lookup(?USERS, User) of
        [{_, Line}] ->
            ok;
        [{_, _Other}] ->
            %% Another connection registered a different key for this user
            %% while this one was authenticating.
            denied;
        [] ->
            ok = file:write(St#st.users_fd, [User, $\s, Line, $\n]),
            ok = file:datasync(St#st.users_fd),
            ets:insert(?USERS, {User, Line}),
            log_registered(User, Key, St),
            ok
    end.

log_registered(User, Key, St) ->
    Fp = ssh:hostkey_fingerprint(sha256, Key),
    ok = file:write(St#st.log_fd, ["register\t", User, $\t, Fp, $\n]),
    game_server:info("registered user ~s with key ~s", [User, Fp]).

stash(User, Key) ->
    Pid = self(),
    ets:insert(?OFFERED, {{Pid, User}, Key}),
    gen_server:cast(?MODULE, {watch, Pid}).

watch(Pid, #st{watched = W} = St) ->
    case maps:is_key(Pid, W) of
        true -> St;
        false -> St#st{watched = W#{Pid => erlang:monitor(process, Pid)}}
    end.

load_users(File) ->
    case file:read_file(File) of
        {ok, Bin} ->
            lists:foreach(
              fun(Line) ->
                      case binary:split(string:trim(Line), <<" ">>, [global, trim_all]) of
                          [User, Type, B64 | _] ->
                              %% first line for a user wins
                              ets:insert_new(?USERS, {User, <<Type/binary, " ", B64/binary>>});
                          _ ->
                              ok
                      end
              end, binary:split(Bin, <<"\n">>, [global, trim_all]));
        {error, enoent} ->
            ok
    end.

user_bin(User) when is_binary(User) -> User;
user_bin(User) -> unicode:characters_to_binary(User).

%% Any user name is accepted, except ones that would break the line-based
%% users file and log: empty, or containing whitespace/control characters.
valid_user(<<>>) -> false;
valid_user(User) when is_binary(User) ->
    nomatch =:= re:run(User, "[\\x00-\\x20\\x7f]", [{capture, none}]);
valid_user(_) -> false.
