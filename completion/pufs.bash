# bash completion for pufs(8): the commands, their options, the keys -o
# takes, and files, directories and sockets where they go.

_pufs_keys()
{
	# The [peer], [cache] and [security] keys that -o and PUFS_* take.
	echo peer.name= peer.listen= peer.discovery= peer.multicast_group= \
	    peer.multicast_port= peer.multicast_interface= \
	    peer.multicast_ttl= peer.peers= peer.control_socket= \
	    peer.op_timeout= peer.heartbeat= peer.dead_after= \
	    peer.create_policy= peer.max_handles= peer.metrics= \
	    cache.attr_timeout= cache.trap_delay= cache.block_size= \
	    cache.cache_size= cache.readahead_max= \
	    cache.writeback_interval= cache.direct_io= \
	    security.key_file= security.encrypt= security.identity= \
	    security.root_squash=
}

_pufs()
{
	local cur prev words cword
	_init_completion -n = || return

	if [ "$cword" -eq 1 ]; then
		COMPREPLY=($(compgen -W 'mount status keygen where --version
		    --help' -- "$cur"))
		return
	fi
	case ${words[1]} in
	mount)
		case $prev in
		-c)
			_filedir ini
			return
			;;
		-e)
			_filedir -d
			return
			;;
		-o)
			# KEY=VALUE[,KEY=VALUE]...: complete the last key.
			local pre=
			[[ $cur == *,* ]] && pre=${cur%,*},
			compopt -o nospace 2>/dev/null
			COMPREPLY=($(compgen -P "$pre" -W "$(_pufs_keys)" \
			    -- "${cur##*,}"))
			return
			;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W '-c -e -o -d --help' -- "$cur"))
		else
			_filedir -d
		fi
		;;
	status)
		case $prev in
		-s | --socket)
			_filedir sock
			return
			;;
		esac
		COMPREPLY=($(compgen -W '-s --socket --json --help' -- "$cur"))
		;;
	where | keygen)
		_filedir
		;;
	esac
} &&
	complete -F _pufs pufs
