%%% Load client for the reference server (used by bench.sh / selftest).
%%%
%%%   erl -noinput -pa EBIN -run game_load main -extra \
%%%       PORT USER KEYDIR SUBSYSTEM COUNT batch|message [VALUE]
%%%
%%% Connects with the key KEYDIR/id_ed25519 (Erlang ssh client), opens the
%%% subsystem and sends COUNT addScore(VALUE) requests, either as one big
%%% stream (`batch`: many PDUs per data message) or one PDU per SSH data
%%% message (`message`), then EOF, and waits for the channel to close.
%%% Prints "SENT <n> RESPONSES <bytes> SECONDS <s>" and halts 0, or halts 1.
-module(game_load).

-export([main/0, main/1]).

main() -> main([]).

main(_) ->
    [PortS, User, KeyDir, Subsystem, CountS, How | Rest] = init:get_plain_arguments(),
    Value = case Rest of [V | _] -> list_to_integer(V); [] -> 789 end,
    Count = list_to_integer(CountS),
    {ok, _} = application:ensure_all_started(ssh),
    {ok, Pdu} = 'Protocol':encode('Request', {addScore, #{value => Value}}),
    T0 = erlang:monotonic_time(millisecond),
    {ok, Conn} = ssh:connect({127, 0, 0, 1}, list_to_integer(PortS),
                             [{user, User}, {user_dir, KeyDir},
                              {silently_accept_hosts, true},
                              {user_interaction, false},
                              {auth_methods, "publickey"},
                              {save_accepted_host, false}], 30000),
    {ok, Chan} = ssh_connection:session_channel(Conn, 30000),
    success = ssh_connection:subsystem(Conn, Chan, Subsystem, 30000),
    Parent = self(),
    %% send from a separate process so responses are consumed meanwhile
    spawn_link(fun() ->
                       send(Conn, Chan, Pdu, Count, list_to_atom(How)),
                       ok = ssh_connection:send_eof(Conn, Chan),
                       Parent ! sent
               end),
    Bytes = collect(Conn, Chan, 0, false),
    T1 = erlang:monotonic_time(millisecond),
    io:format("SENT ~b RESPONSES ~b SECONDS ~.3f~n", [Count, Bytes, (T1 - T0) / 1000]),
    erlang:halt(0).

send(Conn, Chan, Pdu, Count, batch) ->
    %% 1000 PDUs per send call; ssh splits them into packets as it likes
    Chunk = binary:copy(iolist_to_binary(Pdu), 1000),
    Full = Count div 1000,
    [ok = ssh_connection:send(Conn, Chan, Chunk) || _ <- lists:seq(1, Full)],
    case Count rem 1000 of
        0 -> ok;
        R -> ok = ssh_connection:send(Conn, Chan, binary:copy(iolist_to_binary(Pdu), R))
    end;
send(Conn, Chan, Pdu, Count, message) ->
    Bin = iolist_to_binary(Pdu),
    [ok = ssh_connection:send(Conn, Chan, Bin) || _ <- lists:seq(1, Count)],
    ok.

collect(Conn, Chan, Bytes, Sent) ->
    receive
        {ssh_cm, Conn, {data, Chan, _, Data}} ->
            ssh_connection:adjust_window(Conn, Chan, byte_size(Data)),
            collect(Conn, Chan, Bytes + byte_size(Data), Sent);
        {ssh_cm, Conn, {closed, Chan}} when Sent ->
            Bytes;
        {ssh_cm, Conn, {closed, Chan}} ->
            receive sent -> Bytes after 60000 -> Bytes end;
        sent ->
            collect(Conn, Chan, Bytes, true);
        {ssh_cm, Conn, _Other} ->
            collect(Conn, Chan, Bytes, Sent)
    after 120000 ->
            io:format("TIMEOUT after ~b response bytes (all sent: ~p)~n", [Bytes, Sent]),
            erlang:halt(1)
    end.
