%%% Reference server for the integration tests of the `game` client.
%%%
%%% Started by tests/server/game-server as
%%%   erl -noinput -pa EBIN -run game_server main -extra --state DIR
%%%       --mode MODE --port N --bind ADDR --subsystem NAME [--algorithms SPEC]
%%% (--algorithms: offer only these, e.g. "cipher=aes128-ctr;mac=hmac-sha1";
%%% the types of preferred_algorithms, OTP's defaults for the others).
%%% Prints "READY <port>" on stdout once listening and runs until killed.
%%%
%%% A node of the mnesia cluster (started by tests/server/game-cluster) has
%%% also --node NAME --nodes N1,N2,... --cookie FILE --db DIR [--create]
%%% [--host-dir DIR] [--fault F]: it starts distributed Erlang with the
%%% cookie read from FILE (refused unless only its owner can read it),
%%% starts or joins the database (game_db), and serves protocol 1 on
%%% NAME (acknowledging, stored in mnesia) and protocol 2 on NAME-v2.
%%% The line "dump FILE" on its stdin writes the database to FILE as JSON
%%% lines, then prints "DUMPED".
-module(game_server).

-export([main/0, main/1, info/2]).
-include_lib("kernel/include/file.hrl").
%% gen_event callbacks for erl_signal_server (fast exit on SIGTERM)
-export([init/1, handle_event/2, handle_call/2, handle_info/2, terminate/2]).

main() ->
    main([]).

main(_) ->
    try start(parse(init:get_plain_arguments(), #{})) of
        Port ->
            io:format("READY ~b~n", [Port]),
            receive after infinity -> ok end
    catch
        throw:{usage, Msg} ->
            fail("game_server: ~s", [Msg]);
        Class:Reason:Stack ->
            fail("game_server: failed to start: ~p:~p~n~p", [Class, Reason, Stack])
    end.

fail(Fmt, Args) ->
    io:format(standard_error, Fmt ++ "~n", Args),
    erlang:halt(2).

%% Human-readable diagnostics go to stderr; the machine-readable log is
%% STATE/requests.log.
info(Fmt, Args) ->
    io:format(standard_error, "[game_server ~s] " ++ Fmt ++ "~n",
              [calendar:system_time_to_rfc3339(erlang:system_time(millisecond),
                                               [{unit, millisecond}]) | Args]).

parse([], Acc) ->
    Acc;
parse(["--state", V | T], Acc) -> parse(T, Acc#{state => V});
parse(["--mode", V | T], Acc) -> parse(T, Acc#{mode => V});
parse(["--port", V | T], Acc) -> parse(T, Acc#{port => V});
parse(["--bind", V | T], Acc) -> parse(T, Acc#{bind => V});
parse(["--subsystem", V | T], Acc) -> parse(T, Acc#{subsystem => V});
parse(["--exit-on-stdin-eof" | T], Acc) -> parse(T, Acc#{stdin_eof => true});
parse(["--node", V | T], Acc) -> parse(T, Acc#{node => list_to_atom(V)});
parse(["--nodes", V | T], Acc) ->
    parse(T, Acc#{nodes => [list_to_atom(N) || N <- string:lexemes(V, ",")]});
parse(["--cookie", V | T], Acc) -> parse(T, Acc#{cookie => V});
parse(["--db", V | T], Acc) -> parse(T, Acc#{db => filename:absname(V)});
parse(["--create" | T], Acc) -> parse(T, Acc#{create => true});
parse(["--host-dir", V | T], Acc) -> parse(T, Acc#{host_dir => filename:absname(V)});
parse(["--fault", V | T], Acc) -> parse(T, Acc#{fault => V});
parse(["--algorithms", V | T], Acc) ->
    parse(T, Acc#{algorithms => [algorithms(Type) || Type <- string:lexemes(V, ";")]});
parse(["--seed-v1", V | T], Acc) -> parse(T, Acc#{seed_v1 => V});
parse([Other | _], _) -> throw({usage, "unknown argument " ++ Other}).

%% "mac=hmac-sha1,hmac-sha2-256" -> {mac, ['hmac-sha1', 'hmac-sha2-256']}
algorithms(Text) ->
    [Type, Names] = string:split(Text, "="),
    {list_to_atom(Type), [list_to_atom(N) || N <- string:lexemes(Names, ",")]}.

start(Opts) ->
    StateDir = case maps:find(state, Opts) of
                   {ok, D} -> filename:absname(D);
                   error -> throw({usage, "--state DIR is required"})
               end,
    Mode = case game_channel:parse_mode(maps:get(mode, Opts, "ack")) of
               error -> throw({usage, "bad --mode " ++ maps:get(mode, Opts)});
               M -> M
           end,
    Port = case string:to_integer(maps:get(port, Opts, "0")) of
               {P, []} when P >= 0, P < 65536 -> P;
               _ -> throw({usage, "bad --port"})
           end,
    Bind = loopback(maps:get(bind, Opts, "127.0.0.1")),
    Subsystem = maps:get(subsystem, Opts, "game"),
    HostDir = maps:get(host_dir, Opts, filename:join(StateDir, "host")),
    Fault = case game_channel2:parse_fault(maps:get(fault, Opts, "none")) of
                error -> throw({usage, "bad --fault " ++ maps:get(fault, Opts)});
                F -> F
            end,

    %% SIGTERM: exit at once instead of OTP's orderly (and slow) init:stop().
    %% Nothing is lost: all files are written unbuffered.
    ok = gen_event:swap_handler(erl_signal_server, {erl_signal_handler, []}, {?MODULE, []}),
    maps:get(stdin_eof, Opts, false) andalso watch_stdin(),
    Cluster = maps:is_key(node, Opts),
    Cluster andalso start_cluster_node(Opts),
    {ok, _} = application:ensure_all_started(ssh),
    _ = game_proto:responses(),
    {ok, _} = game_users:start(StateDir, case Cluster of true -> mnesia; false -> file end),

    %% refuse: the daemon only offers a subsystem of another name, so the
    %% client's subsystem request fails.
    Subsystems = case {Cluster, Mode} of
                     {true, _} -> [{Subsystem, {game_channel, [cluster, StateDir]}},
                                   {Subsystem ++ "-v2", {game_channel2, [Fault]}}];
                     {false, refuse} -> [{Subsystem ++ "-refused", {game_channel, [ack, StateDir]}}];
                     {false, _} -> [{Subsystem, {game_channel, [Mode, StateDir]}}]
                 end,
    DaemonOpts =
        [{system_dir, HostDir},
         {user_dir, StateDir},                   % never the real ~/.ssh
         {key_cb, {game_keys, [{host_dir, HostDir}]}},
         {auth_methods, "publickey"},
         {subsystems, Subsystems},
         {shell, disabled},
         {exec, disabled},
         {parallel_login, true},
         {connectfun, fun connected/3},
         {failfun, fun failed/3}
         | [{preferred_algorithms, maps:get(algorithms, Opts)} || maps:is_key(algorithms, Opts)]],
    {ok, Daemon} = case ssh:daemon(Bind, Port, DaemonOpts) of
                       {ok, _} = Ok -> Ok;
                       {error, E} -> error({daemon, E})
                   end,
    {ok, Info} = ssh:daemon_info(Daemon),
    RealPort = proplists:get_value(port, Info),
    info("listening on ~s port ~b, subsystem ~p, mode ~p, state ~s",
         [inet:ntoa(Bind), RealPort, Subsystem, Mode, StateDir]),
    RealPort.

%% Distributed Erlang with the cluster's cookie, then the database. The
%% launcher points HOME at the node's own directory, so the random cookie
%% that net_kernel creates in $HOME before set_cookie is never the user's.
start_cluster_node(#{node := Node} = Opts) ->
    Cookie = read_cookie(maps:get(cookie, Opts, undefined)),
    case net_kernel:start(Node, #{name_domain => longnames}) of
        {ok, _} -> ok;
        {error, E} -> error({distribution, Node, E})
    end,
    true = erlang:set_cookie(Cookie),
    Db = case maps:find(db, Opts) of
             {ok, D} -> D;
             error -> throw({usage, "--db DIR is required with --node"})
         end,
    case maps:find(seed_v1, Opts) of
        {ok, File} ->
            {ok, Data} = file:consult(File),
            ok = game_db:create_v1(Db, Data),
            info("wrote a version-1 database to ~s", [Db]),
            erlang:halt(0);
        error ->
            ok
    end,
    ok = game_db:start(#{dir => Db, nodes => maps:get(nodes, Opts, [Node]),
                         create => maps:get(create, Opts, false)}),
    info("node ~s: database up on ~0p", [Node, mnesia:system_info(running_db_nodes)]).

read_cookie(undefined) ->
    throw({usage, "--cookie FILE is required with --node"});
read_cookie(File) ->
    case file:read_file_info(File) of
        {ok, #file_info{mode = Mode}} when Mode band 8#077 =/= 0 ->
            throw({usage, io_lib:format("cookie file ~s is readable by others (mode ~.8b); "
                                        "it must be 0400", [File, Mode band 8#777])});
        {ok, _} ->
            {ok, Bin} = file:read_file(File),
            case string:trim(Bin) of
                <<>> -> throw({usage, "cookie file " ++ File ++ " is empty"});
                C -> binary_to_atom(C)
            end;
        {error, E} ->
            throw({usage, io_lib:format("cannot read cookie file ~s: ~s", [File, file:format_error(E)])})
    end.

loopback(Str) ->
    case inet:parse_address(Str) of
        {ok, {127, _, _, _} = A} -> A;
        {ok, {0, 0, 0, 0, 0, 0, 0, 1} = A} -> A;
        _ -> throw({usage, "--bind must be a loopback address (127.x.x.x or ::1), got " ++ Str})
    end.

%% connectfun: called in the connection process after successful
%% authentication.
connected(User, Peer, Method) ->
    Self = self(),
    case game_users:authenticated(User, Self) of
        {ok, Id} ->
            info("connection ~s: user ~s authenticated (~s) from ~s",
                 [Id, User, Method, peer(Peer)]);
        {denied, Id} ->
            info("connection ~s: user ~s authenticated with a key that is not (any more) "
                 "the registered one; closing", [Id, User]),
            spawn(fun() -> ssh:close(Self) end)
    end.

failed(User, Peer, Reason) ->
    info("authentication failed for ~s from ~s: ~0p", [User, peer(Peer), Reason]).

%% Exit when stdin reaches EOF, i.e. when the test process that holds the
%% other end of the pipe is gone (even if it was SIGKILLed).
watch_stdin() ->
    Parent = self(),
    Pid = spawn(fun() ->
                        Port = open_port({fd, 0, 2}, [in, eof, binary, {line, 4096}]),
                        Parent ! {self(), watching},
                        stdin_loop(Port)
                end),
    receive {Pid, watching} -> true end.

stdin_loop(Port) ->
    receive
        {Port, {data, {eol, <<"dump ", File/binary>>}}} ->
            ok = game_db:dump(File),
            io:put_chars("DUMPED\n"),
            stdin_loop(Port);
        {Port, {data, _}} -> stdin_loop(Port);
        {Port, eof} ->
            info("stdin closed, exiting", []),
            erlang:halt(0)
    end.

peer({Addr, Port}) -> io_lib:format("~s:~b", [inet:ntoa(Addr), Port]);
peer(Addr) -> io_lib:format("~0p", [Addr]).

%%--------------------------------------------------------------------
%% erl_signal_server handler
%%--------------------------------------------------------------------
init(_) -> {ok, []}.

handle_event(sigterm, S) ->
    erlang:halt(0),
    {ok, S};
handle_event(_Signal, S) ->
    {ok, S}.

handle_call(_Req, S) -> {ok, ok, S}.
handle_info(_Info, S) -> {ok, S}.
terminate(_Arg, _S) -> ok.
